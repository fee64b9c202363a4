package breaker

import (
	"context"
	"testing"

	"github.com/bourse-dev/bourse/services/payment/internal/processor"
	"github.com/bourse-dev/bourse/services/payment/internal/processor/instant"
)

func TestGuard(t *testing.T) {
	ctx := context.Background()
	inner := instant.New("acquirer", instant.WithDeclines(instant.Decline{Token: "tok_declined"}))
	set := NewSet(Config{MinCalls: 3, FailureRatio: 0.3})
	g := Guard(inner, set)
	if g.Name() != "acquirer" {
		t.Fatalf("name %q", g.Name())
	}
	usd := processor.Money{Amount: 100, Currency: "USD"}
	for i := range 5 {
		res, err := g.Authorize(ctx, processor.AuthorizeRequest{Key: string(rune('a' + i)), Money: usd, PaymentToken: "tok_declined"})
		if err != nil || res.Status != processor.Declined {
			t.Fatalf("declined card: %v %v", res.Status, err)
		}
	}
	if set.Get("acquirer").State() != Closed {
		t.Fatal("declines opened the circuit")
	}
	inner.SetFaults(func(instant.Call) instant.Fault { return instant.FaultNotReached })
	for i := range 3 {
		g.Authorize(ctx, processor.AuthorizeRequest{Key: string(rune('k' + i)), Money: usd})
	}
	if set.Get("acquirer").State() != Open {
		t.Fatal("3 not reached of 8 calls (ratio 0.3) did not open the circuit")
	}
	calls := inner.Calls()
	res, err := g.Authorize(ctx, processor.AuthorizeRequest{Key: "z", Money: usd})
	if err != nil || res.Status != processor.NotReached || inner.Calls() != calls {
		t.Fatalf("open circuit: %v %v, processor called %d times more", res.Status, err, inner.Calls()-calls)
	}
	look, err := g.Lookup(ctx, processor.OpAuthorize, "a")
	if err != nil || look.Status != processor.Unknown || inner.Calls() != calls {
		t.Fatalf("Lookup through an open circuit: %v %v; want unknown without a call", look.Status, err)
	}
	if Guard(inner, nil) != processor.Processor(inner) {
		t.Fatal("a nil set must not wrap")
	}
}
