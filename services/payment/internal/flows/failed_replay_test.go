package flows

import (
	"context"
	"testing"

	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/processor"
	"github.com/bourse-dev/bourse/services/payment/internal/processor/instant"
)

// A payment that fails before any processor charged it (a fraud decline, every processor
// unreachable) is a result like any other: a retry with the same key replays it at once instead of
// being told the key is still in use.
func TestFailedPaymentIsReplayed(t *testing.T) {
	ctx := context.Background()
	t.Run("fraud decline", func(t *testing.T) {
		e := newEnv(t)
		e.svc.cfg.Fraud = fraudAbove{limit: 1000}
		first, _, err := e.svc.CreatePayment(ctx, "account:alice", "f1", deposit(5000, "tok"))
		if err != nil || first.Status != domain.PaymentFailed {
			t.Fatalf("first: %+v %v", first, err)
		}
		again, replayed, err := e.svc.CreatePayment(ctx, "account:alice", "f1", deposit(5000, "tok"))
		if err != nil || !replayed || again.ID != first.ID || again.Status != domain.PaymentFailed || again.DeclineReason != domain.DeclineFraudSuspected {
			t.Fatalf("retry: %+v replayed=%v %v", again, replayed, err)
		}
	})
	t.Run("no processor reached", func(t *testing.T) {
		down := instant.New("a", instant.WithFaults(func(instant.Call) instant.Fault { return instant.FaultNotReached }))
		e := newEnv(t, down)
		first, _, err := e.svc.CreatePayment(ctx, "account:alice", "n1", deposit(100, "tok"))
		if err != nil || first.Status != domain.PaymentFailed || first.DeclineReason != domain.DeclineProcessorUnavailable {
			t.Fatalf("first: %+v %v", first, err)
		}
		again, replayed, err := e.svc.CreatePayment(ctx, "account:alice", "n1", deposit(100, "tok"))
		if err != nil || !replayed || again.ID != first.ID || again.Status != domain.PaymentFailed {
			t.Fatalf("retry: %+v replayed=%v %v", again, replayed, err)
		}
		if n := down.Acted(processor.OpAuthorize); n != 0 {
			t.Fatalf("%d authorizations at a processor that was never reached", n)
		}
	})
}
