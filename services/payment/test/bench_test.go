package payment_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bourse-dev/bourse/pkg/client"
	paymentv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/payment/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// Durable CreatePayment through gRPC into the real binary with the in-process instant processor, on
// SQLite and PostgreSQL: new keys (the whole flow), replays of one key (the idempotent path) and
// requests refused by validation (the floor under both). Reports p50/p99 and the CPU per payment of
// the server, the clients and, on PostgreSQL, the database server.
func BenchmarkCreatePayment(b *testing.B) {
	for _, db := range []string{"sqlite", "sqlite-no-group-commit", "postgres"} {
		b.Run(db, func(b *testing.B) {
			arg, gc := "--data-dir="+b.TempDir(), "--group-commit=true"
			var meters []cpuMeter
			switch db {
			case "postgres":
				url := testenv.StartPostgres(b)
				arg = "--database-url=" + url
				meters = append(meters, postgresMeter(b, url))
			case "sqlite-no-group-commit":
				gc = "--group-commit=false"
			}
			p := testenv.StartService(b, testenv.Build(b, paymentPkg), nil, "--register=false", "--api-keys="+keyring, arg, gc,
				"--processors=instant", "--risk-addr=127.0.0.1:1", "--rate-limit-account=off", "--outbox-interval=1h")
			c := paymentv1.NewPaymentServiceClient(dialB(b, p.GRPCAddr, aliceKey))
			b.Run("new-key", func(b *testing.B) {
				benchDeposits(b, c, p, func(i int64) string { return fmt.Sprint("bench-", db, "-", time.Now().UnixNano(), "-", i) }, meters...)
			})
			if _, err := c.CreatePayment(context.Background(), deposit("alice", 100, "replayed-key")); err != nil {
				b.Fatal(err)
			}
			b.Run("replay", func(b *testing.B) { benchDeposits(b, c, p, func(int64) string { return "replayed-key" }, meters...) })
			// The same gRPC, authentication, tracing and rate limiting as the others, no database.
			b.Run("refused", func(b *testing.B) {
				benchCalls(b, c, p, func(int64) *paymentv1.CreatePaymentRequest { return deposit("alice", 0, "refused-key") }, codes.InvalidArgument)
			})
		})
	}
}

// The same deposits with the acquirer process in the loop: payment on SQLite authorizes and
// captures every deposit at a real acquirer over gRPC (which group-commits its own durable state),
// new keys only. Reports the acquirer's CPU per payment too.
func BenchmarkCreatePaymentThroughTheAcquirer(b *testing.B) {
	acq := testenv.StartAcquirer(b, testenv.AcquirerOptions{Args: []string{"--rate-limit-service=off", "--log-level=warn"}})
	keyFile := filepath.Join(b.TempDir(), "acquirer.key")
	if err := os.WriteFile(keyFile, []byte(testenv.AcquirerPaymentKey+"\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	p := testenv.StartService(b, testenv.Build(b, paymentPkg), nil, "--register=false", "--api-keys="+keyring, "--data-dir="+b.TempDir(),
		"--processors=acquirer", "--acquirer-addr="+acq.GRPCAddr, "--acquirer-api-key-file="+keyFile, "--circuit-breakers=false",
		"--risk-addr=127.0.0.1:1", "--rate-limit-account=off", "--outbox-interval=1h")
	c := paymentv1.NewPaymentServiceClient(dialB(b, p.GRPCAddr, aliceKey))
	acquirer := cpuMeter{"acquirer", func() time.Duration { return processCPU(b, acq.Process.Cmd.Process.Pid, false) }}
	b.Run("new-key", func(b *testing.B) {
		benchDeposits(b, c, p, func(i int64) string { return fmt.Sprint("acq-", time.Now().UnixNano(), "-", i) }, acquirer)
	})
}

// cpuMeter reads the CPU time another process (name) has used so far.
type cpuMeter struct {
	name string
	read func() time.Duration
}

// benchDeposits sends deposits of $1 under the keys key gives; each must succeed.
func benchDeposits(b *testing.B, c paymentv1.PaymentServiceClient, p *testenv.Process, key func(int64) string, meters ...cpuMeter) {
	benchCalls(b, c, p, func(i int64) *paymentv1.CreatePaymentRequest { return deposit("alice", 100, key(i)) }, codes.OK, meters...)
}

// benchCalls sends the requests req makes from parallel clients; each must end with code want.
func benchCalls(b *testing.B, c paymentv1.PaymentServiceClient, p *testenv.Process, req func(int64) *paymentv1.CreatePaymentRequest,
	want codes.Code, meters ...cpuMeter) {
	ctx := context.Background()
	var n atomic.Int64
	lat := make(chan time.Duration, 1<<16)
	b.SetParallelism(benchParallelism(b))
	server := cpuMeter{"server", func() time.Duration { return processCPU(b, p.Cmd.Process.Pid, false) }}
	// The clients are this process: on a 2-core machine their CPU is what the server does not get.
	meters = append([]cpuMeter{server, {"client", func() time.Duration { return selfCPU(b) }}}, meters...)
	before := make([]time.Duration, len(meters))
	for i, m := range meters {
		before[i] = m.read()
	}
	stopProfile := profileServer(b, p)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			start := time.Now()
			if _, err := c.CreatePayment(ctx, req(n.Add(1))); status.Code(err) != want {
				b.Errorf("CreatePayment: %v, want %s", err, want)
				return
			}
			select {
			case lat <- time.Since(start):
			default:
			}
		}
	})
	b.StopTimer()
	stopProfile()
	// CPU per payment, unlike the rate, hardly depends on what else runs on the machine.
	for i, m := range meters {
		b.ReportMetric(float64((m.read()-before[i]).Microseconds())/float64(b.N), m.name+"-cpu-µs/op")
	}
	close(lat)
	var ls []time.Duration
	for l := range lat {
		ls = append(ls, l)
	}
	if len(ls) > 0 {
		sort.Slice(ls, func(i, j int) bool { return ls[i] < ls[j] })
		b.ReportMetric(float64(ls[len(ls)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(ls[len(ls)*99/100].Microseconds())/1000, "p99-ms")
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "payments/s")
}

func dialB(b *testing.B, addr, key string) *grpc.ClientConn {
	conn, err := client.Dial(addr, client.Options{APIKey: key})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return conn
}

// processCPU is the user and system CPU time process pid has used so far, with that of its children
// that have exited and been waited for when reaped is set (Linux /proc).
func processCPU(b *testing.B, pid int, reaped bool) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	_, ticks := parseStat(b, pid, stat, reaped)
	return ticks
}

// parseStat reads a /proc/<pid>/stat: the parent's pid, and the CPU time (utime and stime, then
// cutime and cstime when reaped; clock ticks of USER_HZ, 100 on Linux).
func parseStat(b *testing.B, pid int, stat []byte, reaped bool) (ppid int, cpu time.Duration) {
	// The fields after the command name, which is parenthesized and may hold spaces: the ppid is
	// the 4th field of the line, utime to cstime the 14th to 17th.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(f) < 15 {
		b.Fatalf("/proc/%d/stat: %q", pid, stat)
	}
	last := 13
	if reaped {
		last = 15
	}
	var ticks int64
	for _, s := range f[11:last] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		ticks += v
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		b.Fatalf("/proc/%d/stat: %q", pid, stat)
	}
	return ppid, time.Duration(ticks) * (time.Second / 100)
}

// postgresMeter reads the CPU time of the PostgreSQL server at url: its postmaster and every
// process the postmaster started (backends, WAL writer, checkpointer), those gone included.
func postgresMeter(b *testing.B, url string) cpuMeter {
	db, err := sql.Open("pgx", url)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var dataDir string
	if err := db.QueryRow("SHOW data_directory").Scan(&dataDir); err != nil {
		b.Fatal(err)
	}
	pidFile, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		b.Fatal(err)
	}
	postmaster, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(pidFile), "\n", 2)[0]))
	if err != nil {
		b.Fatalf("postmaster.pid: %q", pidFile)
	}
	return cpuMeter{"postgres", func() time.Duration {
		total := processCPU(b, postmaster, true)
		procs, _ := filepath.Glob("/proc/[0-9]*/stat")
		for _, path := range procs {
			stat, err := os.ReadFile(path)
			if err != nil {
				continue // gone meanwhile: its time is the postmaster's reaped children's now
			}
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
			if ppid, cpu := parseStat(b, pid, stat, true); ppid == postmaster {
				total += cpu
			}
		}
		return total
	}}
}

// profileServer records 3 s of p's CPU profile from the start of the benchmark when BENCH_CPUPROFILE
// names a file (the benchmark's name is appended); the returned func waits for it and saves it.
func profileServer(b *testing.B, p *testenv.Process) func() {
	path := os.Getenv("BENCH_CPUPROFILE")
	if path == "" || b.N < 1000 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Get("http://" + p.MetricsAddr + "/debug/pprof/profile?seconds=3")
		if err != nil {
			b.Error(err)
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err == nil {
			err = os.WriteFile(path+"."+strings.ReplaceAll(b.Name(), "/", "_"), body, 0o644)
		}
		if err != nil {
			b.Error(err)
		}
	}()
	return func() { <-done }
}

// benchParallelism is the clients per core: BENCH_PARALLELISM, or 16 (32 clients on 2 cores).
func benchParallelism(b *testing.B) int {
	if v := os.Getenv("BENCH_PARALLELISM"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("BENCH_PARALLELISM=%q", v)
		}
		return n
	}
	return 16
}

// selfCPU is the user and system CPU time this process has used so far.
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
