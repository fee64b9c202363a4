package flows

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/testenv"
	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/idempotency"
	"github.com/bourse-dev/bourse/services/payment/internal/processor"
	"github.com/bourse-dev/bourse/services/payment/internal/store"
)

// replicas runs fn with two services on one database that share a processor and a clock: on
// SQLite two services on one store (a restarted process), lanes on and off; on PostgreSQL two
// stores, as two replicas, lanes on. b has never seen a key a has seen, and the other way round.
func replicas(t *testing.T, fn func(t *testing.T, a, b *env, advance func(time.Duration))) {
	const retention = time.Hour
	pair := func(a *env, bst *store.Store) (*env, func(time.Duration)) {
		now := time.Now()
		var mu sync.Mutex
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		a.st.SetClock(clock)
		bst.SetClock(clock)
		cfg := Config{Router: Static{a.proc}, Risk: a.risk, ProcessorTimeout: time.Second, SettleAfter: 5 * time.Second, Retention: retention}
		cfg.Store = a.st
		a.svc = New(cfg)
		cfg.Store = bst
		b := &env{st: bst, proc: a.proc, risk: a.risk, svc: New(cfg)}
		return b, func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	}
	t.Run("sqlite", func(t *testing.T) {
		for _, lanes := range []bool{true, false} {
			t.Run(fmt.Sprint("lanes=", lanes), func(t *testing.T) {
				a := laneEnv(t, filepath.Join(t.TempDir(), "payment.db"), store.Options{NoGroupCommit: !lanes})
				b, advance := pair(a, a.st)
				fn(t, a, b, advance)
			})
		}
	})
	t.Run("postgres", func(t *testing.T) {
		url := testenv.StartPostgres(t)
		a := laneEnv(t, url, store.Options{})
		bst, err := store.OpenWith(context.Background(), url, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { bst.Close() })
		b, advance := pair(a, bst)
		fn(t, a, b, advance)
	})
}

// Whichever process a request reaches, the claim's new order (the lane first for a key the
// process has not seen) gives the general path's answers: a key in flight in the other process is
// in use (or misused, with other parameters) and nothing is written; once done, it replays there;
// a finished key past retention is claimed again and executed anew in either process; and many
// requests with the same keys spread over both execute each key once.
func TestClaimOrderAcrossProcesses(t *testing.T) {
	replicas(t, func(t *testing.T, a, b *env, advance func(time.Duration)) {
		ctx := context.Background()

		// In flight in a, unseen in b.
		got := refusedWhileInFlight(t, a, b, "busy")
		got.p.PaymentToken = ""
		// b has seen the key now (it read first); a process that has not (a fresh one) replays too.
		c := New(Config{Store: b.st, Router: Static{a.proc}, Risk: a.risk, ProcessorTimeout: time.Second, SettleAfter: 5 * time.Second, Retention: time.Hour})
		for name, svc := range map[string]*Service{"the process that refused it": b.svc, "a fresh process": c} {
			again, replayed, err := svc.CreatePayment(ctx, "account:alice", "busy", deposit(900, "tok"))
			if err != nil || !replayed || !reflect.DeepEqual(again, got.p) {
				t.Fatalf("%s: retry after the first finished (replayed %v, %v): %+v\nfirst answered %+v", name, replayed, err, again, got.p)
			}
		}

		// Past retention a finished key is claimed anew, whether or not the process saw it.
		old, _, err := a.svc.CreatePayment(ctx, "account:alice", "old", deposit(100, "tok"))
		if err != nil {
			t.Fatal(err)
		}
		advance(2 * time.Hour)
		for _, w := range []struct {
			name string
			svc  *Service
		}{{"seen", a.svc}, {"unseen", c}} {
			name, svc, key := w.name, w.svc, "old"
			acted := a.proc.Acted(processor.OpAuthorize)
			if name == "unseen" {
				// c has not seen "old2"; a's request saw it first.
				key = "old2"
				if _, _, err := a.svc.CreatePayment(ctx, "account:alice", key, deposit(100, "tok")); err != nil {
					t.Fatal(err)
				}
				advance(2 * time.Hour)
				acted = a.proc.Acted(processor.OpAuthorize)
			}
			p, replayed, err := svc.CreatePayment(ctx, "account:alice", key, deposit(100, "tok"))
			if err != nil || replayed || p.ID == old.ID || p.Status != domain.PaymentSucceeded {
				t.Fatalf("%s key past retention: %s %s, replayed %v, %v; want a new payment", name, p.ID, p.Status, replayed, err)
			}
			if n := a.proc.Acted(processor.OpAuthorize); n != acted+1 {
				t.Fatalf("%s key past retention: %d authorizations, want %d", name, n, acted+1)
			}
			again, replayed, err := b.svc.CreatePayment(ctx, "account:alice", key, deposit(100, "tok"))
			if err != nil || !replayed || again.ID != p.ID {
				t.Fatalf("%s key past retention, then replayed: %s, replayed %v, %v; want %s", name, again.ID, replayed, err, p.ID)
			}
		}

		// Many requests, the same keys, both processes at once: each key executes once.
		const keys, each = 12, 3
		acted := a.proc.Acted(processor.OpAuthorize)
		payments, err := a.st.ListPayments(ctx, store.PaymentFilter{AccountID: "alice", Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		ids := map[string]map[string]bool{}
		var wg sync.WaitGroup
		for k := range keys {
			key := fmt.Sprint("spread-", k)
			ids[key] = map[string]bool{}
			for i := range 2 * each {
				svc := a.svc
				if i%2 == 1 {
					svc = b.svc
				}
				wg.Go(func() {
					p, _, err := svc.CreatePayment(ctx, "account:alice", key, deposit(int64(10+k), "tok"))
					mu.Lock()
					defer mu.Unlock()
					switch {
					case errors.Is(err, idempotency.ErrInUse):
					case err != nil:
						t.Errorf("%s: %v", key, err)
					default:
						ids[key][p.ID] = true
					}
				})
			}
		}
		wg.Wait()
		for key, m := range ids {
			if len(m) != 1 {
				t.Fatalf("%s answered payments %v, want one", key, m)
			}
		}
		if n := a.proc.Acted(processor.OpAuthorize); n != acted+keys {
			t.Fatalf("%d authorizations for %d keys", n-acted, keys)
		}
		after, err := a.st.ListPayments(ctx, store.PaymentFilter{AccountID: "alice", Limit: 1000})
		if err != nil || len(after) != len(payments)+keys {
			t.Fatalf("%d payments (%v), want %d", len(after), err, len(payments)+keys)
		}
	})
}
