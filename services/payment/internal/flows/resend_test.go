package flows

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/ledger"
	"github.com/bourse-dev/bourse/services/payment/internal/processor"
	"github.com/bourse-dev/bourse/services/payment/internal/processor/instant"
)

// A re-send that does not reach the processor proves nothing about the first call, which may have
// acted with its answer lost (or its process killed). Found by the chaos test (test/chaos_test.go):
// a capture the acquirer had made went back to requires_capture (captured at the processor, never
// credited in risk), and a payout the acquirer had paid fell back to the next processor (paid twice).

// faultSeq answers the n-th call of op with seq[n] (FaultNone past the end); lookups are never faulted.
type faultSeq struct {
	mu    sync.Mutex
	op    processor.Operation
	seq   []instant.Fault
	calls int
}

func (f *faultSeq) fault(c instant.Call) instant.Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c.Lookup || c.Op != f.op {
		return instant.FaultNone
	}
	f.calls++
	if f.calls <= len(f.seq) {
		return f.seq[f.calls-1]
	}
	return instant.FaultNone
}

// The capture acts and its answer is lost; the janitor's re-send finds the processor down. The
// payment must stay processing (not go back to requires_capture), and the next re-send settles it:
// captured once, the ledger and risk credited once.
func TestCaptureResendNotReachedAfterUnknownWaits(t *testing.T) {
	f := &faultSeq{op: processor.OpCapture, seq: []instant.Fault{instant.FaultUnknownAfter, instant.FaultNotReached}}
	e := newEnv(t, instant.New("instant", instant.WithFaults(f.fault)))
	ctx := context.Background()
	in := deposit(1000, "tok")
	in.CaptureMethod = domain.CaptureManual
	p, _, err := e.svc.CreatePayment(ctx, "account:alice", "k", in)
	if err != nil || p.Status != domain.PaymentRequiresCapture {
		t.Fatalf("%+v %v", p, err)
	}
	p, _, err = e.svc.CapturePayment(ctx, "account:alice", "c", p.ID, 600)
	if err != nil || p.Status != domain.PaymentProcessing || e.proc.Acted(processor.OpCapture) != 1 {
		t.Fatalf("capture with its answer lost: %+v %v, %d captures", p, err, e.proc.Acted(processor.OpCapture))
	}
	e.advance(6 * time.Second)
	e.svc.JanitorPass(ctx) // the re-send: NotReached
	if got, _ := e.st.GetPayment(ctx, p.ID); got.Status != domain.PaymentProcessing {
		t.Fatalf("after a re-send that did not reach the processor the payment is %s (captured %d there), want processing",
			got.Status, e.proc.Acted(processor.OpCapture))
	}
	e.advance(time.Minute)
	e.svc.JanitorPass(ctx)
	e.svc.OutboxPass(ctx)
	got, _ := e.st.GetPayment(ctx, p.ID)
	if got.Status != domain.PaymentSucceeded || got.Captured != 600 || e.proc.Acted(processor.OpCapture) != 1 {
		t.Fatalf("settled: %s, captured %d, %d captures at the processor", got.Status, got.Captured, e.proc.Acted(processor.OpCapture))
	}
	if b := balance(t, e.st, ledger.Customer("alice")); b != -600 || e.risk.get("alice") != 600 {
		t.Fatalf("customer funds %d, risk %d; want -600 and 600", b, e.risk.get("alice"))
	}
}

// The payout acts at the first processor and its answer is lost; the janitor's re-send finds it
// down. It must not fall back to the second processor (a second payout): it asks the first again.
func TestPayoutResendNotReachedAfterUnknownDoesNotFallBack(t *testing.T) {
	f := &faultSeq{op: processor.OpPayout, seq: []instant.Fault{instant.FaultUnknownAfter, instant.FaultNotReached}}
	a := instant.New("a", instant.WithFaults(f.fault))
	b := instant.New("b")
	e := newEnv(t, a, b)
	ctx := context.Background()
	e.risk.balance["alice"] = 5000
	x, _, err := e.svc.CreatePayout(ctx, "account:alice", "p", PayoutInput{AccountID: "alice", Amount: domain.Money{Amount: 2000, Currency: "USD"}, Destination: "ba_ok"})
	if err != nil || x.Status != domain.PayoutProcessing || a.Acted(processor.OpPayout) != 1 {
		t.Fatalf("payout with its answer lost: %+v %v", x, err)
	}
	for range 3 {
		e.advance(time.Minute)
		e.svc.JanitorPass(ctx)
	}
	got, _ := e.st.GetPayout(ctx, x.ID)
	if n := b.Acted(processor.OpPayout); n != 0 {
		t.Fatalf("paid out at the first processor and %d times at the second (payout now %s at %s)", n, got.Status, got.Processor)
	}
	if got.Status != domain.PayoutSucceeded || got.Processor != "a" || a.Acted(processor.OpPayout) != 1 || e.risk.get("alice") != 3000 {
		t.Fatalf("payout %s at %s, %d payouts at a, risk %d", got.Status, got.Processor, a.Acted(processor.OpPayout), e.risk.get("alice"))
	}
}

// A payout whose first call is provably not reached still falls back at once (nothing was sent).
func TestPayoutFirstCallNotReachedFallsBack(t *testing.T) {
	f := &faultSeq{op: processor.OpPayout, seq: []instant.Fault{instant.FaultNotReached}}
	a := instant.New("a", instant.WithFaults(f.fault))
	b := instant.New("b")
	e := newEnv(t, a, b)
	e.risk.balance["alice"] = 5000
	x, _, err := e.svc.CreatePayout(context.Background(), "account:alice", "p", PayoutInput{AccountID: "alice",
		Amount: domain.Money{Amount: 2000, Currency: "USD"}, Destination: "ba_ok"})
	if err != nil || x.Status != domain.PayoutSucceeded || x.Processor != "b" || a.Acted(processor.OpPayout) != 0 || b.Acted(processor.OpPayout) != 1 {
		t.Fatalf("%+v %v", x, err)
	}
}

// Retries wait 1 s, then twice as long each time, never longer than MaxBackoff (default 1 h).
func TestBackoffDoublesUpToTheCap(t *testing.T) {
	for _, c := range []struct {
		max  time.Duration
		n    int
		want time.Duration
	}{
		{0, 1, time.Second}, {0, 2, 2 * time.Second}, {0, 5, 16 * time.Second}, {0, 12, 2048 * time.Second}, {0, 13, time.Hour}, {0, 1000, time.Hour},
		{10 * time.Second, 4, 8 * time.Second}, {10 * time.Second, 5, 10 * time.Second}, {10 * time.Second, 60, 10 * time.Second},
		{time.Second, 1, time.Second}, {time.Second, 3, time.Second},
	} {
		s := New(Config{MaxBackoff: c.max})
		if got := s.backoff(c.n); got != c.want {
			t.Errorf("MaxBackoff %s: backoff(%d) = %s, want %s", c.max, c.n, got, c.want)
		}
	}
}
