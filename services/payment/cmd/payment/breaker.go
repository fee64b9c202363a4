package main

import (
	"context"

	"github.com/bourse-dev/bourse/services/payment/internal/breaker"
	"github.com/bourse-dev/bourse/services/payment/internal/processor"
)

// guarded puts a processor behind its circuit breaker: while the circuit is open a call is refused
// without reaching the processor, which is NotReached (the flows fall back to the next processor or
// retry later). Lookup is never refused: the janitor must be able to ask what happened.
type guarded struct {
	processor.Processor
	set *breaker.Set
}

func (g guarded) call(do func() (processor.Result, error)) (processor.Result, error) {
	ticket, ok := g.set.Allow(g.Name())
	if !ok {
		return processor.Result{Status: processor.NotReached, Message: "circuit open: " + g.Name() + " not called"}, nil
	}
	res, err := do()
	s := res.Status
	if err != nil && s != processor.NotReached {
		s = processor.Unknown
	}
	ticket.Record(s)
	return res, err
}

func (g guarded) Authorize(ctx context.Context, r processor.AuthorizeRequest) (processor.Result, error) {
	return g.call(func() (processor.Result, error) { return g.Processor.Authorize(ctx, r) })
}

func (g guarded) Capture(ctx context.Context, r processor.CaptureRequest) (processor.Result, error) {
	return g.call(func() (processor.Result, error) { return g.Processor.Capture(ctx, r) })
}

func (g guarded) Void(ctx context.Context, r processor.VoidRequest) (processor.Result, error) {
	return g.call(func() (processor.Result, error) { return g.Processor.Void(ctx, r) })
}

func (g guarded) Refund(ctx context.Context, r processor.RefundRequest) (processor.Result, error) {
	return g.call(func() (processor.Result, error) { return g.Processor.Refund(ctx, r) })
}

func (g guarded) Payout(ctx context.Context, r processor.PayoutRequest) (processor.Result, error) {
	return g.call(func() (processor.Result, error) { return g.Processor.Payout(ctx, r) })
}
