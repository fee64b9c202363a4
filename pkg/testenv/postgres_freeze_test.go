package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
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
