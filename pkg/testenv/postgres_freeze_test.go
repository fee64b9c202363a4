package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// cleanupRecorder is a test's handle that keeps the cleanups registered on it and the failures
// reported to it, so that a test can run them and see what they report.
type cleanupRecorder struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
	failures []string
}

func (r *cleanupRecorder) Cleanup(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}

func (r *cleanupRecorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

func (r *cleanupRecorder) runCleanups() []string {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	return r.failures
}

// A server killed while frozen is simply dead: the cleanup Freeze registered has nothing to let go
// on and must not fail the test (it continued the reaped postmaster's pid before).
func TestPostgresKillWhileFrozen(t *testing.T) {
	pg := StartPostgresServer(t)
	r := &cleanupRecorder{TB: t}
	pg.Freeze(r)
	pg.Kill(t)
	if fails := r.runCleanups(); len(fails) != 0 {
		t.Fatalf("the cleanup of a freeze whose server was killed failed: %q", fails)
	}
	pg.Restart(t) // and it comes back as after any kill
	db, err := sql.Open("pgx", pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.PingContext(t.Context()); err != nil {
		t.Fatalf("after Restart: %v", err)
	}
}

// Freeze returns once every process of the server is stopped, the backends the postmaster forks
// while it is told to stop among them: none of them answers until Thaw, even while clients keep
// opening connections (a fork at the moment of the stop).
func TestPostgresFreezeStopsEveryProcess(t *testing.T) {
	pg := StartPostgresServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for range 4 { // connection churn: the postmaster forks a backend for each
		wg.Go(func() {
			for ctx.Err() == nil {
				db, err := sql.Open("pgx", pg.URL)
				if err != nil {
					return
				}
				cctx, c := context.WithTimeout(ctx, 200*time.Millisecond)
				_ = db.PingContext(cctx)
				c()
				db.Close()
			}
		})
	}
	for round := range 20 {
		time.Sleep(20 * time.Millisecond)
		pg.Freeze(t)
		pm := pg.srv.Process.Pid
		procs, err := childrenOf(pm)
		if err != nil {
			t.Fatal(err)
		}
		self, _ := readProcStat(pm)
		for _, p := range append(procs, self) {
			if now, ok := readProcStat(p.pid); ok && now.state != "T" && now.state != "t" && now.state != "Z" {
				t.Fatalf("round %d: process %d of the frozen server is in state %s, want stopped", round, p.pid, now.state)
			}
		}
		pg.Thaw(t)
	}
}

// A test binary that dies while its server is frozen (killed, or a -timeout panic: no cleanup
// runs) must not leave the server's processes stopped for ever. The test runs itself again as a
// child that freezes a server and exits at once, then waits for every process of that server to end.
func TestFrozenPostgresIsLetGoWhenTheTestDies(t *testing.T) {
	if os.Getenv("BOURSE_TESTENV_DIE_FROZEN") != "" {
		pg := StartPostgresServer(t)
		db, err := sql.Open("pgx", pg.URL)
		if err == nil {
			err = db.PingContext(t.Context()) // a backend of this process's own
		}
		if err != nil {
			t.Fatal(err)
		}
		pg.Freeze(t)
		pids := []string{strconv.Itoa(pg.srv.Process.Pid)}
		for _, b := range pg.frozen {
			pids = append(pids, strconv.Itoa(b.pid))
		}
		fmt.Printf("frozen %s %s\n", pg.dir, strings.Join(pids, " "))
		os.Exit(3) // no cleanup runs
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFrozenPostgresIsLetGoWhenTheTestDies$", "-test.count=1")
	cmd.Env = append(os.Environ(), "BOURSE_TESTENV_DIE_FROZEN=1")
	out, _ := cmd.Output()
	var dir string
	var pids []int
	for line := range strings.Lines(string(out)) {
		if f := strings.Fields(line); len(f) > 2 && f[0] == "frozen" {
			dir = f[1]
			for _, s := range f[2:] {
				pid, err := strconv.Atoi(s)
				if err != nil {
					t.Fatalf("child's line %q", line)
				}
				pids = append(pids, pid)
			}
		}
	}
	if len(pids) < 2 {
		t.Fatalf("the child froze no server with a backend:\n%s", out)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	deadline := time.Now().Add(30 * time.Second)
	for _, pid := range pids {
		for {
			st, ok := readProcStat(pid)
			if !ok || st.state == "Z" || st.state == "X" {
				break
			}
			if time.Now().After(deadline) {
				for _, p := range pids { // let them go: the test failed, the machine should not pay for it
					_ = syscall.Kill(p, syscall.SIGKILL)
				}
				t.Fatalf("postgres process %d still there (state %s) 30s after its test died frozen", pid, st.state)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
