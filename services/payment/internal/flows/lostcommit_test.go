package flows

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/testenv"
	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/idempotency"
	"github.com/bourse-dev/bourse/services/payment/internal/ledger"
	"github.com/bourse-dev/bourse/services/payment/internal/store"
)

// A COMMIT whose answer is lost (the transaction committed, the client was told nothing) on
// PostgreSQL, in each of the writes of a deposit and a refund: the request either goes on from what
// the database holds or fails retryably, never answers what it only has in memory, and the key the
// lost commit claimed is never stuck: the request's retry gets the one object, at once or once the
// janitor has settled it. Each deposit is credited in risk once and the ledger balances (laneEnv's
// cleanup checks the store's invariants).
func TestLostCommitAnswer(t *testing.T) {
	u, err := url.Parse(testenv.StartPostgres(t))
	if err != nil {
		t.Fatal(err)
	}
	cut := newCommitCutter(t, u.Host)
	u.Host = cut.addr()
	e := laneEnv(t, u.String(), store.Options{})
	e.st.SetClock(e.clock)
	ctx := context.Background()
	lost := 0
	wantLost := func(what string) {
		t.Helper()
		if lost++; cut.lostAnswers() != lost {
			t.Fatalf("%s: %d commit answers lost, want %d (the test lost nothing it meant to)", what, cut.lostAnswers(), lost)
		}
	}
	replays := func(key string, want domain.Payment) {
		t.Helper()
		p, replayed, err := e.svc.CreatePayment(ctx, "account:alice", key, deposit(want.Amount.Amount, "tok_ok"))
		if err != nil || !replayed || p.ID != want.ID || p.Status != want.Status {
			t.Fatalf("retry of %s: %s %s replayed=%v, %v; want %s %s replayed", key, p.ID, p.Status, replayed, err, want.ID, want.Status)
		}
	}

	// The lane's claim: the request finds its own claim in the database and goes on with it.
	cut.loseCommit(1)
	p1, replayed, err := e.svc.CreatePayment(ctx, "account:alice", "k1", deposit(1000, "tok_ok"))
	wantLost("lane claim")
	if err != nil || replayed || p1.Status != domain.PaymentSucceeded {
		t.Fatalf("deposit whose claim's answer was lost: %+v replayed=%v, %v; want it succeeded", p1, replayed, err)
	}
	replays("k1", p1)

	// The lane's verdict: the request reads the verdict the database has.
	cut.loseCommit(2)
	p2, replayed, err := e.svc.CreatePayment(ctx, "account:alice", "k2", deposit(2000, "tok_ok"))
	wantLost("lane verdict")
	if err != nil || replayed || p2.Status != domain.PaymentSucceeded || p2.Captured != 2000 {
		t.Fatalf("deposit whose verdict's answer was lost: %+v replayed=%v, %v; want it succeeded", p2, replayed, err)
	}
	replays("k2", p2)
	e.svc.OutboxPass(ctx) // risk credited, so that it takes the refund's debit

	// The general path's claim of a refund: the request cannot know and fails; its retry finds the
	// key in use until the janitor has carried the refund through, then the one refund.
	cut.loseCommit(1)
	if r, _, err := e.svc.RefundPayment(ctx, "account:alice", "r1", p1.ID, 300, ""); err == nil {
		t.Fatalf("refund whose claim's answer was lost answered %+v, want an error", r)
	}
	wantLost("refund claim")
	if _, _, err := e.svc.RefundPayment(ctx, "account:alice", "r1", p1.ID, 300, ""); !errors.Is(err, idempotency.ErrInUse) {
		t.Fatalf("retry of the refund at once: %v, want the key in use (its claim committed)", err)
	}
	settle := func() {
		for range 4 {
			e.advance(6 * time.Second) // past SettleAfter (5 s) and the janitor's backoff
			e.svc.JanitorPass(ctx)
			e.svc.OutboxPass(ctx)
		}
	}
	settle()
	r1, replayed, err := e.svc.RefundPayment(ctx, "account:alice", "r1", p1.ID, 300, "")
	if err != nil || !replayed || r1.Status != domain.RefundSucceeded || r1.Amount.Amount != 300 {
		t.Fatalf("retry of the refund once settled: %+v replayed=%v, %v; want it succeeded, replayed", r1, replayed, err)
	}

	// The general path's claim of a deposit (no lanes): the same, the janitor failing the payment
	// whose processor never saw it.
	gst, err := store.OpenWith(ctx, u.String(), store.Options{NoGroupCommit: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gst.Close() })
	gst.SetClock(e.clock)
	general := New(Config{Store: gst, Router: Static{e.proc}, Risk: e.risk, ProcessorTimeout: time.Second, SettleAfter: 5 * time.Second})
	cut.loseCommit(1)
	if p, _, err := general.CreatePayment(ctx, "account:alice", "k3", deposit(4000, "tok_ok")); err == nil {
		t.Fatalf("deposit whose claim's answer was lost answered %+v, want an error", p)
	}
	wantLost("general claim")
	if _, _, err := general.CreatePayment(ctx, "account:alice", "k3", deposit(4000, "tok_ok")); !errors.Is(err, idempotency.ErrInUse) {
		t.Fatalf("retry of the deposit at once: %v, want the key in use (its claim committed)", err)
	}
	settle()
	p3, replayed, err := general.CreatePayment(ctx, "account:alice", "k3", deposit(4000, "tok_ok"))
	if err != nil || !replayed || p3.Status != domain.PaymentFailed {
		t.Fatalf("retry of the deposit once settled: %+v replayed=%v, %v; want it failed (never authorized), replayed", p3, replayed, err)
	}

	e.svc.OutboxPass(ctx)
	if got := e.risk.get("alice"); got != 1000+2000-300 {
		t.Fatalf("risk holds %d for alice, want %d: two deposits credited once, one refund debited once", got, 1000+2000-300)
	}
	if got := balance(t, e.st, ledger.Customer("alice")); got != -(1000 + 2000 - 300) {
		t.Fatalf("customer funds %d in the ledger, want %d", got, -(1000 + 2000 - 300))
	}
}
