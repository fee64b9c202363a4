package flows

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/processor"
	"github.com/bourse-dev/bourse/services/payment/internal/processor/instant"
)

func authorize(t *testing.T, e *env, key string) domain.Payment {
	t.Helper()
	in := deposit(1000, "tok")
	in.CaptureMethod = domain.CaptureManual
	p, _, err := e.svc.CreatePayment(context.Background(), "account:alice", key, in)
	if err != nil || p.Status != domain.PaymentRequiresCapture {
		t.Fatalf("authorize: %+v %v", p, err)
	}
	return p
}

func payment(t *testing.T, e *env, id string) domain.Payment {
	t.Helper()
	p, err := e.st.GetPayment(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// eventTypes lists the types of the events about object, in log order.
func eventTypes(t *testing.T, e *env, object string) []string {
	t.Helper()
	evs, err := e.st.ListEvents(context.Background(), "alice", "", 0, 500)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		if ev.ObjectID == object {
			out = append(out, ev.Type)
		}
	}
	return out
}

// An authorization left uncaptured is kept for the capture window, then voided at the processor
// (key <attempt id>:void) and the payment canceled with reason expired and a payment.canceled event.
func TestUncapturedAuthorizationExpires(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p := authorize(t, e, "k")
	young := authorize(t, e, "k2")

	e.advance(DefaultCaptureWindow - time.Minute)
	e.svc.JanitorPass(ctx)
	if got := payment(t, e, p.ID); got.Status != domain.PaymentRequiresCapture || e.proc.Acted(processor.OpVoid) != 0 {
		t.Fatalf("inside the window: %s, %d voids; want requires_capture, none", got.Status, e.proc.Acted(processor.OpVoid))
	}
	// young was created at the same instant; a third one created now must outlive both.
	fresh := authorize(t, e, "k3")
	e.advance(2 * time.Minute)
	e.svc.JanitorPass(ctx)

	for _, id := range []string{p.ID, young.ID} {
		got := payment(t, e, id)
		if got.Status != domain.PaymentCanceled || got.DeclineReason != domain.DeclineExpired || got.Captured != 0 {
			t.Fatalf("past the window: %+v; want canceled, expired, nothing captured", got)
		}
		if len(got.Attempts) != 1 || got.Attempts[0].Status != domain.AttemptVoided || got.Attempts[0].PendingOp != domain.OpNone {
			t.Fatalf("attempts %+v; want one voided", got.Attempts)
		}
		// The void went out under the attempt's void key: the processor answers that key as voided.
		res, err := e.proc.Lookup(ctx, processor.OpVoid, got.Attempts[0].OpKey(domain.OpVoid))
		if err != nil || res.Status != processor.Approved {
			t.Fatalf("processor's void under %s: %+v %v", got.Attempts[0].OpKey(domain.OpVoid), res, err)
		}
		if types := eventTypes(t, e, id); types[len(types)-1] != "payment.canceled" {
			t.Fatalf("events %v; want the last payment.canceled", types)
		}
	}
	if n := e.proc.Acted(processor.OpVoid); n != 2 {
		t.Fatalf("%d voids at the processor, want 2", n)
	}
	if got := payment(t, e, fresh.ID); got.Status != domain.PaymentRequiresCapture {
		t.Fatalf("a payment authorized a minute ago: %s", got.Status)
	}
	// An expired payment can no longer be captured, and further passes change nothing.
	if _, _, err := e.svc.CapturePayment(ctx, "account:alice", "c", p.ID, 0); errs.KindOf(err) != errs.KindFailedPrecondition {
		t.Fatalf("capturing an expired payment: %v", err)
	}
	e.svc.JanitorPass(ctx)
	if n := e.proc.Acted(processor.OpVoid); n != 2 || e.proc.Acted(processor.OpCapture) != 0 {
		t.Fatalf("after another pass: %d voids, %d captures", n, e.proc.Acted(processor.OpCapture))
	}
}

// A void that fails technically (not reached, or its answer lost) leaves the payment processing —
// never canceled while the authorization may still hold — and is retried with growing waits until
// the processor voids it.
func TestExpiryVoidRetriedWithBackoff(t *testing.T) {
	for _, fault := range []instant.Fault{instant.FaultNotReached, instant.FaultUnknownBefore} {
		t.Run(fmt.Sprint(fault), func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			p := authorize(t, e, "k")
			var voidCalls atomic.Int32
			e.proc.SetFaults(func(c instant.Call) instant.Fault {
				if c.Op == processor.OpVoid && !c.Lookup {
					voidCalls.Add(1)
					return fault
				}
				return instant.FaultNone
			})
			e.advance(DefaultCaptureWindow + time.Second)
			e.svc.JanitorPass(ctx)
			if voidCalls.Load() != 1 {
				t.Fatalf("%d void calls on expiry, want 1", voidCalls.Load())
			}
			var waits []time.Duration
			last := e.clock()
			for range 4 {
				got := payment(t, e, p.ID)
				if got.Status != domain.PaymentProcessing || got.Attempts[0].PendingOp != domain.OpVoid {
					t.Fatalf("after a failed void: %s, pending %q; want processing with the void pending", got.Status, got.Attempts[0].PendingOp)
				}
				// Nothing is retried before the attempt's next try is due.
				next := got.Attempts[0].NextLookupAt
				before := voidCalls.Load()
				e.advance(next.Sub(e.clock()) - time.Millisecond)
				e.svc.JanitorPass(ctx)
				if voidCalls.Load() != before {
					t.Fatalf("void retried %v before it was due", time.Millisecond)
				}
				e.advance(time.Millisecond)
				e.svc.JanitorPass(ctx)
				if voidCalls.Load() != before+1 {
					t.Fatalf("void not retried once due (%d calls, want %d)", voidCalls.Load(), before+1)
				}
				waits = append(waits, next.Sub(last))
				last = next
			}
			for i := 2; i < len(waits); i++ {
				if waits[i] <= waits[i-1] {
					t.Fatalf("waits between tries %v; want growing", waits)
				}
			}
			e.proc.SetFaults(nil)
			got := payment(t, e, p.ID)
			e.advance(got.Attempts[0].NextLookupAt.Sub(e.clock()))
			e.svc.JanitorPass(ctx)
			got = payment(t, e, p.ID)
			if got.Status != domain.PaymentCanceled || got.DeclineReason != domain.DeclineExpired || got.Attempts[0].Status != domain.AttemptVoided {
				t.Fatalf("once the processor answers: %+v", got)
			}
			if n := strings.Count(strings.Join(eventTypes(t, e, p.ID), " "), "payment.canceled"); n != 1 {
				t.Fatalf("%d payment.canceled events, want 1", n)
			}
		})
	}
}

// A capture racing the expiry: exactly one wins. A captured payment was never voided and is
// credited; an expired one was never captured.
func TestCaptureRacesExpiry(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const n = 30
	var ids []string
	for i := range n {
		ids = append(ids, authorize(t, e, fmt.Sprint("k", i)).ID)
	}
	e.advance(DefaultCaptureWindow + time.Second)
	// Per payment, its capture and its expiry start together.
	var wg sync.WaitGroup
	var captured, refused atomic.Int32
	for i, id := range ids {
		start := make(chan struct{})
		wg.Go(func() {
			<-start
			_, _, err := e.svc.CapturePayment(ctx, "account:alice", fmt.Sprint("c", i), id, 0)
			switch {
			case err == nil:
				captured.Add(1)
			case errs.KindOf(err) == errs.KindFailedPrecondition:
				refused.Add(1)
			default:
				t.Errorf("capture %s: %v", id, err)
			}
		})
		wg.Go(func() {
			<-start
			if err := e.svc.expire(ctx, id); err != nil {
				t.Errorf("expire %s: %v", id, err)
			}
		})
		close(start)
	}
	wg.Wait()
	e.svc.JanitorPass(ctx)
	var succeeded, canceled int32
	for _, id := range ids {
		p := payment(t, e, id)
		switch {
		case p.Status == domain.PaymentSucceeded && p.Attempts[0].Status == domain.AttemptCaptured && p.Captured == 1000:
			succeeded++
		case p.Status == domain.PaymentCanceled && p.DeclineReason == domain.DeclineExpired && p.Attempts[0].Status == domain.AttemptVoided:
			canceled++
		default:
			t.Fatalf("payment %s ended %s (attempt %s)", id, p.Status, p.Attempts[0].Status)
		}
	}
	if succeeded != captured.Load() || canceled != refused.Load() || succeeded+canceled != n {
		t.Fatalf("%d succeeded, %d canceled; captures answered %d ok, %d refused", succeeded, canceled, captured.Load(), refused.Load())
	}
	if e.proc.Acted(processor.OpCapture) != int64(succeeded) || e.proc.Acted(processor.OpVoid) != int64(canceled) {
		t.Fatalf("processor: %d captures, %d voids; want %d, %d", e.proc.Acted(processor.OpCapture), e.proc.Acted(processor.OpVoid), succeeded, canceled)
	}
	for range 2 {
		e.svc.OutboxPass(ctx)
	}
	if got := e.risk.get("alice"); got != int64(succeeded)*1000 {
		t.Fatalf("risk credited %d, want %d", got, succeeded*1000)
	}
	t.Logf("%d captured, %d expired", succeeded, canceled)
}
