package matching_test

import (
	"context"
	"syscall"
	"testing"

	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
)

// TestFilledNotionalThroughRestart: the real binary answers Σ price × qty of an order's fills in
// filled_notional, on the submit answer and on GetOrder, and the same after a SIGKILL and restart
// (snapshot every two commands, so the restart reads a snapshot and replays the journal after it).
func TestFilledNotionalThroughRestart(t *testing.T) {
	p := startPlatform(t, "--snapshot-every=2")
	p.addSymbol(t)
	ctx := context.Background()
	for _, o := range []*matchingv1.SubmitOrderRequest{
		limitOrder("bob", "s1", sell, "50000", "0.003"),
		limitOrder("bob", "s2", sell, "50000.5", "0.002"),
	} {
		if r := must(t)(p.bob.SubmitOrder(ctx, o)).(*matchingv1.SubmitOrderResponse); r.GetOrder().GetFilledNotional() != "0" {
			t.Fatalf("resting %s: filled_notional %q, want 0", o.GetClientOrderId(), r.GetOrder().GetFilledNotional())
		}
	}
	// 0.003 × 50000 + 0.001 × 50000.5 = 150 + 50.0005
	r := must(t)(p.alice.SubmitOrder(ctx, limitOrder("alice", "b1", buy, "50001", "0.004"))).(*matchingv1.SubmitOrderResponse)
	if got := r.GetOrder().GetFilledNotional(); got != "200.0005" {
		t.Fatalf("taker's answer: filled_notional %q, want 200.0005 (%v)", got, r.GetOrder())
	}
	want := map[string]string{"alice/b1": "200.0005", "bob/s1": "150", "bob/s2": "50.0005"}
	check := func(when string) {
		t.Helper()
		for key, w := range want {
			acct, cid := key[:len(key)-3], key[len(key)-2:]
			cl := p.alice
			if acct == "bob" {
				cl = p.bob
			}
			got := must(t)(cl.GetOrder(ctx, &matchingv1.GetOrderRequest{AccountId: acct, Symbol: "BTC-USD", ClientOrderId: cid})).(*matchingv1.GetOrderResponse)
			if n := got.GetOrder().GetFilledNotional(); n != w {
				t.Fatalf("%s: %s filled_notional %q, want %s", when, key, n, w)
			}
		}
	}
	check("live")
	p.stopMatching(t, syscall.SIGKILL)
	p.startMatching(t, "--snapshot-every=2")
	check("after SIGKILL and restart")
}
