package flows

import (
	"context"
	"testing"

	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/processor"
	"github.com/bourse-dev/bourse/services/payment/internal/processor/instant"
)

// A request that stalls past its attempt's lookup time before calling the processor must not call
// it: the janitor may meanwhile have looked the attempt up, found nothing and failed the payment, and
// a late call would then charge a failed payment. The attempt is not reached; the next processor may
// take the payment.
func TestStalledRequestDoesNotCallAfterTheJanitorMayLook(t *testing.T) {
	ctx := context.Background()
	t.Run("one processor", func(t *testing.T) {
		a := instant.New("a")
		e := newEnv(t, a)
		e.svc.beforeAuthorize = func(domain.Attempt) { e.advance(e.svc.cfg.SettleAfter) }
		p, _, err := e.svc.CreatePayment(ctx, "account:alice", "s1", deposit(100, "tok"))
		if err != nil || p.Status != domain.PaymentFailed || p.DeclineReason != domain.DeclineProcessorUnavailable {
			t.Fatalf("%+v %v", p, err)
		}
		if n := a.Calls(); n != 0 {
			t.Fatalf("%d calls at the processor after the attempt's lookup time", n)
		}
		e.svc.JanitorPass(ctx)
		if got, _ := e.st.GetPayment(ctx, p.ID); got.Status != domain.PaymentFailed {
			t.Fatalf("after the janitor: %s", got.Status)
		}
	})
	t.Run("the next processor takes it", func(t *testing.T) {
		a, b := instant.New("a"), instant.New("b")
		e := newEnv(t, a, b)
		stalled := false
		e.svc.beforeAuthorize = func(domain.Attempt) {
			if !stalled {
				stalled = true
				e.advance(e.svc.cfg.SettleAfter)
			}
		}
		p, _, err := e.svc.CreatePayment(ctx, "account:alice", "s2", deposit(100, "tok"))
		if err != nil || p.Status != domain.PaymentSucceeded {
			t.Fatalf("%+v %v", p, err)
		}
		if a.Calls() != 0 || b.Acted(processor.OpAuthorize) != 1 {
			t.Fatalf("calls at a: %d, authorizations at b: %d", a.Calls(), b.Acted(processor.OpAuthorize))
		}
	})
	t.Run("the client gave up meanwhile", func(t *testing.T) {
		a, b := instant.New("a"), instant.New("b")
		e := newEnv(t, a, b)
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stalled := false
		e.svc.beforeAuthorize = func(domain.Attempt) {
			if !stalled {
				stalled = true
				e.advance(e.svc.cfg.SettleAfter)
				cancel()
			}
		}
		p, _, err := e.svc.CreatePayment(cctx, "account:alice", "s4", deposit(100, "tok"))
		if err != nil || p.Status != domain.PaymentSucceeded || a.Calls() != 0 || b.Acted(processor.OpAuthorize) != 1 {
			t.Fatalf("%+v %v; calls at a %d, authorizations at b %d", p, err, a.Calls(), b.Acted(processor.OpAuthorize))
		}
		again, replayed, err := e.svc.CreatePayment(ctx, "account:alice", "s4", deposit(100, "tok"))
		if err != nil || !replayed || again.ID != p.ID || again.Status != domain.PaymentSucceeded {
			t.Fatalf("retry: %+v replayed=%v %v", again, replayed, err)
		}
	})
	t.Run("no stall: the call goes out", func(t *testing.T) {
		a := instant.New("a")
		e := newEnv(t, a)
		e.svc.beforeAuthorize = func(domain.Attempt) { e.advance(e.svc.cfg.SettleAfter / 2) }
		p, _, err := e.svc.CreatePayment(ctx, "account:alice", "s3", deposit(100, "tok"))
		if err != nil || p.Status != domain.PaymentSucceeded || a.Acted(processor.OpAuthorize) != 1 {
			t.Fatalf("%+v %v, %d authorizations", p, err, a.Acted(processor.OpAuthorize))
		}
	})
}
