package main

import (
	"context"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/services/payment/internal/breaker"
	"github.com/bourse-dev/bourse/services/payment/internal/processor"
	"github.com/bourse-dev/bourse/services/payment/internal/processor/instant"
)

// A processor that keeps failing technically is no longer called once its circuit opens (calls are
// NotReached without reaching it); Lookup still reaches it; after the cool-down a probe goes through.
func TestGuardedProcessorStopsCallingAfterTheCircuitOpens(t *testing.T) {
	now := time.Now()
	p := instant.New("acq", instant.WithFaults(func(instant.Call) instant.Fault { return instant.FaultNotReached }))
	g := guarded{p, breaker.NewSet(breaker.Config{MinCalls: 4, CoolDown: time.Minute, Now: func() time.Time { return now }})}
	ctx := context.Background()
	for i := range 10 {
		res, err := g.Authorize(ctx, processor.AuthorizeRequest{Key: "k" + string(rune('a'+i)), Money: processor.Money{Amount: 1, Currency: "USD"}})
		if err != nil || res.Status != processor.NotReached {
			t.Fatalf("call %d: %v %v", i, res, err)
		}
	}
	if n := p.Calls(); n != 4 {
		t.Fatalf("the processor was called %d times, want 4 (then the circuit opened)", n)
	}
	if _, err := g.Lookup(ctx, processor.OpAuthorize, "ka"); err != nil || p.Calls() != 5 {
		t.Fatalf("lookup through an open circuit: %v, %d calls", err, p.Calls())
	}
	p.SetFaults(nil)
	now = now.Add(2 * time.Minute)
	if res, _ := g.Authorize(ctx, processor.AuthorizeRequest{Key: "probe", Money: processor.Money{Amount: 1, Currency: "USD"}}); res.Status != processor.Approved {
		t.Fatalf("probe after the cool-down: %v", res)
	}
}
