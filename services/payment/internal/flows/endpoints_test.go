package flows

import (
	"context"
	"fmt"
	"testing"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/store"
)

// An account's live endpoints are bounded: each event writes one delivery per endpoint.
func TestWebhookEndpointsPerAccountAreBounded(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	in := EndpointInput{AccountID: "acct-1", URL: "https://example.test/hook"}
	for i := range MaxEndpointsPerAccount {
		if _, _, err := e.svc.CreateWebhookEndpoint(ctx, "account:acct-1", fmt.Sprintf("wh-%d", i), in); err != nil {
			t.Fatalf("endpoint %d: %v", i, err)
		}
	}
	_, _, err := e.svc.CreateWebhookEndpoint(ctx, "account:acct-1", "wh-over", in)
	if errs.KindOf(err) != errs.KindFailedPrecondition {
		t.Fatalf("endpoint %d: %v, want FailedPrecondition", MaxEndpointsPerAccount+1, err)
	}
	other := EndpointInput{AccountID: "acct-2", URL: "https://example.test/hook"}
	if _, _, err := e.svc.CreateWebhookEndpoint(ctx, "account:acct-2", "wh-0", other); err != nil {
		t.Fatalf("another account's first endpoint: %v", err)
	}
}

// The event types an endpoint may subscribe to include every type the flows write, so that no
// subscription the API accepts is one that can never fire, and none that can fire is refused.
func TestEveryWrittenEventTypeCanBeSubscribedTo(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p, _, err := e.svc.CreatePayment(ctx, "account:alice", "k", deposit(5000, "tok"))
	if err != nil {
		t.Fatal(err)
	}
	e.svc.OutboxPass(ctx)
	if _, _, err := e.svc.RefundPayment(ctx, "account:alice", "r1", p.ID, 300, ""); err != nil {
		t.Fatal(err)
	}
	out := PayoutInput{AccountID: "alice", Amount: domain.Money{Amount: 2000, Currency: "USD"}, Destination: "ba_ok"}
	if _, _, err := e.svc.CreatePayout(ctx, "account:alice", "p1", out); err != nil {
		t.Fatal(err)
	}
	out.Amount.Amount = 999999 // over the balance: a failed payout
	if _, _, err := e.svc.CreatePayout(ctx, "account:alice", "p2", out); err != nil {
		t.Fatal(err)
	}
	evs, err := e.st.ListEvents(ctx, "alice", "", 0, 500)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, ev := range evs {
		seen[ev.Type] = true
		if !IsEventType(ev.Type) {
			t.Errorf("event type %q is written but not in EventTypes %v", ev.Type, EventTypes())
		}
	}
	for _, want := range []string{"payment.created", "payment.succeeded", "refund.created", "payout.created", "payout.failed"} {
		if !seen[want] {
			t.Errorf("no %s among the events written %v: the test no longer covers it", want, seen)
		}
	}
	for _, bad := range []string{"", "payment", "payment.", "payment.*", "payment.succeded", "charge.succeeded"} {
		if IsEventType(bad) {
			t.Errorf("%q is taken for an event type", bad)
		}
	}
}

// The replay of a creation (same caller, key and request) is the same endpoint with the same
// secret, and creates nothing; the same key with another request is refused without a secret; a
// refusal (the account full) leaves the key free for a retry once there is room.
func TestCreateWebhookEndpointReplay(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	in := EndpointInput{AccountID: "acct-1", URL: "https://example.test/hook", EventTypes: []string{"payment.succeeded"}}
	first, replayed, err := e.svc.CreateWebhookEndpoint(ctx, "account:acct-1", "wh", in)
	if err != nil || replayed || first.Secret == "" {
		t.Fatalf("create: %+v replayed=%v %v", first, replayed, err)
	}
	again, replayed, err := e.svc.CreateWebhookEndpoint(ctx, "account:acct-1", "wh", in)
	if err != nil || !replayed || again.ID != first.ID || again.Secret != first.Secret {
		t.Fatalf("replay: %+v replayed=%v %v; want endpoint %s with its secret", again, replayed, err, first.ID)
	}
	other := in
	other.URL = "https://attacker.test/hook"
	got, _, err := e.svc.CreateWebhookEndpoint(ctx, "account:acct-1", "wh", other)
	if err == nil || got.Secret != "" {
		t.Fatalf("the key with another URL: %+v %v; want refused, no secret", got, err)
	}
	eps, err := e.st.Endpoints(ctx, store.EndpointsPage{Account: "acct-1", Limit: 100})
	if err != nil || len(eps) != 1 || eps[0].ID != first.ID || eps[0].URL != in.URL {
		t.Fatalf("endpoints %+v %v; want the one created", eps, err)
	}

	// Full account: refused, and the key is not spent.
	for i := 1; i < MaxEndpointsPerAccount; i++ {
		if _, _, err := e.svc.CreateWebhookEndpoint(ctx, "account:acct-1", fmt.Sprintf("wh-%d", i), in); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := e.svc.CreateWebhookEndpoint(ctx, "account:acct-1", "wh-late", in); errs.KindOf(err) != errs.KindFailedPrecondition {
		t.Fatalf("over the bound: %v", err)
	}
	if err := e.st.DeleteEndpoint(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	late, replayed, err := e.svc.CreateWebhookEndpoint(ctx, "account:acct-1", "wh-late", in)
	if err != nil || replayed || late.ID == first.ID {
		t.Fatalf("the refused key retried with room: %+v replayed=%v %v", late, replayed, err)
	}
}
