package flows

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/processor"
)

// holdFirstDebit is risk whose first Debit waits (before applying) until release is closed, so a
// test can run the janitor while a refund request is inside its first step.
type holdFirstDebit struct {
	*fakeRisk
	mu      sync.Mutex
	debits  int
	entered chan struct{}
	release chan struct{}
}

func (h *holdFirstDebit) Debit(ctx context.Context, account, asset, amount, ref string) error {
	h.mu.Lock()
	h.debits++
	first := h.debits == 1
	h.mu.Unlock()
	if first {
		close(h.entered)
		<-h.release
	}
	return h.fakeRisk.Debit(ctx, account, asset, amount, ref)
}

func (h *holdFirstDebit) calls() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.debits
}

// refundInFirstStep starts a refund whose request then waits inside its risk debit; the returned
// function releases the debit and returns the request's answer.
func refundInFirstStep(t *testing.T, e *env) (*holdFirstDebit, string, func() domain.Refund) {
	t.Helper()
	ctx := context.Background()
	p, _, err := e.svc.CreatePayment(ctx, "account:alice", "k", deposit(1000, "tok"))
	if err != nil {
		t.Fatal(err)
	}
	e.svc.OutboxPass(ctx)
	h := &holdFirstDebit{fakeRisk: e.risk, entered: make(chan struct{}), release: make(chan struct{})}
	e.svc.cfg.Risk = h
	type answer struct {
		r   domain.Refund
		err error
	}
	done := make(chan answer, 1)
	go func() {
		r, _, err := e.svc.RefundPayment(ctx, "account:alice", "r", p.ID, 400, "")
		done <- answer{r, err}
	}()
	var once sync.Once
	release := func() { once.Do(func() { close(h.release) }) }
	t.Cleanup(release) // a test that fails early does not leave the request waiting
	<-h.entered
	later := e.clock().Add(time.Hour)
	refunds, err := e.st.DueRefunds(ctx, later, later, 10) // every open refund
	if err != nil || len(refunds) != 1 {
		t.Fatalf("open refunds %v %v, want the one in flight", refunds, err)
	}
	return h, refunds[0].ID, func() domain.Refund {
		release()
		a := <-done
		if a.err != nil {
			t.Fatal(a.err)
		}
		return a.r
	}
}

// The janitor takes over a refund only once its request has had --settle-after to finish: a pass
// while the request is still inside its first step (the risk debit) leaves the refund alone, and
// the request answers the settled refund. Before, a new refund was due at once (no next step time),
// so any janitor pass during the request's first step ran the saga beside it, and the request,
// losing the compare-and-set, answered PROCESSING.
func TestJanitorLeavesAFreshRefundToItsRequest(t *testing.T) {
	e := newEnv(t)
	h, id, finish := refundInFirstStep(t, e)
	e.advance(e.svc.cfg.SettleAfter / 2)
	e.svc.JanitorPass(context.Background())
	if n := h.calls(); n != 1 {
		t.Fatalf("%d risk debits during the request's first step, want 1 (the request's own): the janitor ran the refund beside it", n)
	}
	if got, _ := e.st.GetRefund(context.Background(), id); got.Status != domain.RefundPending {
		t.Fatalf("refund %s during its request's first step, want pending", got.Status)
	}
	if r := finish(); r.Status != domain.RefundSucceeded {
		t.Fatalf("the request answered %s, want succeeded", r.Status)
	}
	if n := e.proc.Acted(processor.OpRefund); n != 1 || e.risk.get("alice") != 600 {
		t.Fatalf("%d refunds at the processor, risk %d; want 1, 600", n, e.risk.get("alice"))
	}
}

// A refund whose request stalls past --settle-after is the janitor's: it finishes the saga (risk
// and the processor acting once), and the stalled request, losing the compare-and-set, answers the
// refund as it then is.
func TestJanitorTakesOverAStalledRefund(t *testing.T) {
	e := newEnv(t)
	h, id, finish := refundInFirstStep(t, e)
	e.advance(e.svc.cfg.SettleAfter + time.Second)
	e.svc.JanitorPass(context.Background())
	if got, _ := e.st.GetRefund(context.Background(), id); got.Status != domain.RefundSucceeded {
		t.Fatalf("refund %s after the janitor's pass, want succeeded", got.Status)
	}
	if r := finish(); r.ID != id || r.Status != domain.RefundSucceeded {
		t.Fatalf("the stalled request answered %s %s, want %s succeeded", r.ID, r.Status, id)
	}
	if n := e.proc.Acted(processor.OpRefund); n != 1 || e.risk.get("alice") != 600 || h.calls() != 2 {
		t.Fatalf("%d refunds at the processor, risk %d, %d debits; want 1, 600, 2 (one applied)", n, e.risk.get("alice"), h.calls())
	}
}
