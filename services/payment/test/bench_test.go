package payment_test

import (
	"bytes"
	"context"
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

	"github.com/bourse-dev/bourse/pkg/client"
	paymentv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/payment/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// Durable CreatePayment through gRPC into the real binary with the in-process instant processor, on
// SQLite and PostgreSQL: new keys (the whole flow) and replays of one key (the idempotent path).
// Reports p50/p99 besides ns/op.
func BenchmarkCreatePayment(b *testing.B) {
	for _, db := range []string{"sqlite", "sqlite-no-group-commit", "postgres"} {
		b.Run(db, func(b *testing.B) {
			arg, gc := "--data-dir="+b.TempDir(), "--group-commit=true"
			switch db {
			case "postgres":
				arg = "--database-url=" + testenv.StartPostgres(b)
			case "sqlite-no-group-commit":
				gc = "--group-commit=false"
			}
			p := testenv.StartService(b, testenv.Build(b, paymentPkg), nil, "--register=false", "--api-keys="+keyring, arg, gc,
				"--processors=instant", "--risk-addr=127.0.0.1:1", "--rate-limit-account=off", "--outbox-interval=1h")
			c := paymentv1.NewPaymentServiceClient(dialB(b, p.GRPCAddr, aliceKey))
			ctx := context.Background()
			b.Run("new-key", func(b *testing.B) {
				benchCreate(b, ctx, c, p, func(i int64) string { return fmt.Sprint("bench-", db, "-", time.Now().UnixNano(), "-", i) })
			})
			if _, err := c.CreatePayment(ctx, deposit("alice", 100, "replayed-key")); err != nil {
				b.Fatal(err)
			}
			b.Run("replay", func(b *testing.B) { benchCreate(b, ctx, c, p, func(int64) string { return "replayed-key" }) })
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
	b.Run("new-key", func(b *testing.B) {
		acq0 := processCPU(b, acq.Process)
		benchCreate(b, context.Background(), c, p, func(i int64) string { return fmt.Sprint("acq-", time.Now().UnixNano(), "-", i) })
		b.ReportMetric(float64((processCPU(b, acq.Process)-acq0).Microseconds())/float64(b.N), "acquirer-cpu-µs/op")
	})
}

func benchCreate(b *testing.B, ctx context.Context, c paymentv1.PaymentServiceClient, p *testenv.Process, key func(int64) string) {
	var n atomic.Int64
	lat := make(chan time.Duration, 1<<16)
	b.SetParallelism(benchParallelism(b))
	cpu0, self0 := processCPU(b, p), selfCPU(b)
	stopProfile := profileServer(b, p)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			start := time.Now()
			if _, err := c.CreatePayment(ctx, deposit("alice", 100, key(n.Add(1)))); err != nil {
				b.Error(err)
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
	// The payment process's own CPU per payment: unlike the rate, it hardly depends on what else
	// runs on the machine.
	b.ReportMetric(float64((processCPU(b, p)-cpu0).Microseconds())/float64(b.N), "server-cpu-µs/op")
	// The clients' CPU (this process): on a 2-core machine it is what the server does not get.
	b.ReportMetric(float64((selfCPU(b)-self0).Microseconds())/float64(b.N), "client-cpu-µs/op")
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

// processCPU is the user and system CPU time p has used so far (Linux /proc).
func processCPU(b *testing.B, p *testenv.Process) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is parenthesized and may hold spaces: utime and stime
	// are the 12th and 13th, in clock ticks (USER_HZ, 100 on Linux).
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(f) < 13 {
		b.Fatalf("/proc/%d/stat: %q", p.Cmd.Process.Pid, stat)
	}
	var ticks int64
	for _, s := range f[11:13] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		ticks += v
	}
	return time.Duration(ticks) * (time.Second / 100)
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
