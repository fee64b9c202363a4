package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/sqldb"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// A PostgreSQL server that hangs instead of failing (every process stopped: connections open,
// nothing answers). Every write, through a lane or the general path, fails within the store's
// TxTimeout with an error Unavailable reports (the client's retry is safe); nothing hangs on the
// lanes' writers; reads (a replay's, a GetPayment's, a list's) fail the same way within the same
// bound, however long their callers would wait; once the server answers again the same store writes, and the lanes' deposits
// that failed left nothing behind that the invariants or a fresh claim of their keys trip on.
func TestHungPostgresFailsWithinTheTimeout(t *testing.T) {
	const timeout = time.Second
	s, pg := storeOnPostgresServer(t, timeout)
	ctx := context.Background()
	before := laneDeposit(s, "hung", "before", 100)
	if ok, err := s.ClaimDeposit(ctx, before); !ok || err != nil {
		t.Fatalf("claim before: %v %v", ok, err)
	}

	pg.Freeze(t)
	start := time.Now()
	out := make(chan outcome, 11)
	for i := range 4 {
		go func() {
			_, err := s.ClaimDeposit(ctx, laneDeposit(s, "hung", "lane-"+string(rune('a'+i)), 100))
			out <- outcome{"lane claim", err}
		}()
		go func() {
			_, err := tryClaimGeneral(s, laneDeposit(s, "hung", "general-"+string(rune('a'+i)), 100))
			out <- outcome{"general claim", err}
		}()
	}
	go func() {
		_, err := s.GetPayment(ctx, before.Payment.ID)
		out <- outcome{"GetPayment", err}
	}()
	go func() {
		_, _, err := s.FinishedKey(ctx, before.Key.Caller, before.Key.Key, time.Hour)
		out <- outcome{"replay's read", err}
	}()
	go func() {
		_, err := s.ListPayments(ctx, PaymentFilter{AccountID: "hung", Limit: 10})
		out <- outcome{"ListPayments", err}
	}()
	for range 11 {
		wantHungTimeout(t, <-out)
	}
	// Each lane batch and each transaction has its own bound; the driver gives up on a connection
	// a moment after its context ends.
	if d := time.Since(start); d > 4*timeout+5*time.Second {
		t.Errorf("answered after %v", d)
	}
	pg.Thaw(t)

	if ok, err := s.ClaimDeposit(ctx, laneDeposit(s, "hung", "after", 100)); !ok || err != nil {
		t.Fatalf("claim of a new key once the database answers: %v %v", ok, err)
	}
	// A claim whose commit went through before its time ran out holds its key (the general path
	// then reads it, as flows does); one that did not left the key free. Neither errs.
	for _, key := range []string{"lane-a", "general-a"} {
		if _, err := s.ClaimDeposit(ctx, laneDeposit(s, "hung", key, 100)); err != nil {
			t.Fatalf("claim of %q once the database answers: %v", key, err)
		}
	}
	if err := s.CheckInvariants(ctx); err != nil {
		t.Fatal(err)
	}
}

// storeOnPostgresServer opens a store with TxTimeout timeout on a PostgreSQL server of its own,
// which the test may freeze and thaw; the store is closed when the test ends.
func storeOnPostgresServer(t *testing.T, timeout time.Duration) (*Store, *testenv.Postgres) {
	t.Helper()
	pg := testenv.StartPostgresServer(t)
	return openStore(t, pg.URL, Options{TxTimeout: timeout}), pg
}

// outcome is what one call made while the database hangs answered.
type outcome struct {
	what string
	err  error
}

// wantHungTimeout fails the test unless o is the store's timeout, one Unavailable reports.
func wantHungTimeout(t *testing.T, o outcome) {
	t.Helper()
	if !errors.Is(o.err, sqldb.ErrTxTimeout) || !sqldb.Unavailable(o.err) {
		t.Errorf("%s while the database hangs: %v, want a timeout that Unavailable reports", o.what, o.err)
	}
}
