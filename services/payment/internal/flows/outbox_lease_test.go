package flows

import (
	"context"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/payment/internal/domain"
)

// hangingRisk is a risk that takes a call and does not answer until released, then answers without
// having acted (as a risk that died with the call would).
type hangingRisk struct{ called, release chan struct{} }

func (r hangingRisk) Credit(context.Context, string, string, string, string) error {
	r.called <- struct{}{}
	<-r.release
	return errs.New(errs.KindUnavailable, "risk went away")
}

func (r hangingRisk) Debit(context.Context, string, string, string, string) error {
	return errs.New(errs.KindUnavailable, "risk went away")
}

// An outbox item is its claimer's for Config.OutboxLease, not a fixed time: while one dispatcher
// hangs on risk with the item, another leaves it alone until the lease has passed and then delivers
// it, once.
func TestOutboxLeaseIsConfigured(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p, _, err := e.svc.CreatePayment(ctx, "account:alice", "k1", deposit(1250, "tok_ok"))
	if err != nil || p.Status != domain.PaymentSucceeded {
		t.Fatalf("payment %+v, %v", p, err)
	}
	const lease = 5 * time.Second
	hang := hangingRisk{called: make(chan struct{}), release: make(chan struct{})}
	stuck := New(Config{Store: e.st, Router: Static{e.proc}, Risk: hang, OutboxLease: lease, RiskTimeout: time.Minute})
	passed := make(chan int)
	go func() { passed <- stuck.OutboxPass(ctx) }()
	<-hang.called // claimed, and hanging on risk

	e.advance(lease - time.Second)
	if n := e.svc.OutboxPass(ctx); n != 0 {
		t.Fatalf("%d items claimed within another dispatcher's lease", n)
	}
	e.advance(time.Second)
	if n := e.svc.OutboxPass(ctx); n != 1 {
		t.Fatalf("%d items claimed once the lease passed, want 1", n)
	}
	close(hang.release)
	if n := <-passed; n != 1 {
		t.Fatalf("the hanging dispatcher claimed %d items, want 1", n)
	}
	if e.risk.get("alice") != 1250 || e.risk.applied != 1 {
		t.Fatalf("risk balance %d after %d transfers; want 1250 after 1", e.risk.get("alice"), e.risk.applied)
	}
	if got, _ := e.st.GetPayment(ctx, p.ID); !got.RiskCredited {
		t.Fatal("payment not marked risk_credited")
	}
	if n, _ := e.st.OutboxLen(ctx); n != 0 {
		t.Fatalf("%d outbox items left", n)
	}
}
