package breaker

import (
	"context"
	"errors"

	"github.com/bourse-dev/bourse/services/payment/internal/processor"
)

// Guard returns p behind its breaker from s: while the circuit is open every operation answers
// NotReached without calling p (the caller may fall back), and Lookup answers Unknown (it could not
// be asked; try later). Every call made is counted by its outcome; a call whose caller gave up
// (context canceled) is not counted, since it says nothing about the processor. A nil s returns p.
func Guard(p processor.Processor, s *Set) processor.Processor {
	if s == nil {
		return p
	}
	return &guarded{p: p, b: s.Get(p.Name())}
}

type guarded struct {
	p processor.Processor
	b *Breaker
}

func (g *guarded) Name() string { return g.p.Name() }

var openResult = processor.Result{Status: processor.NotReached, Message: "circuit open"}

func (g *guarded) run(ctx context.Context, closed processor.Result, call func() (processor.Result, error)) (processor.Result, error) {
	t, ok := g.b.Allow()
	if !ok {
		return closed, nil
	}
	res, err := call()
	if errors.Is(ctx.Err(), context.Canceled) && IsFailure(res.Status) {
		t.Cancel()
	} else {
		t.Record(res.Status)
	}
	return res, err
}

func (g *guarded) Authorize(ctx context.Context, req processor.AuthorizeRequest) (processor.Result, error) {
	return g.run(ctx, openResult, func() (processor.Result, error) { return g.p.Authorize(ctx, req) })
}

func (g *guarded) Capture(ctx context.Context, req processor.CaptureRequest) (processor.Result, error) {
	return g.run(ctx, openResult, func() (processor.Result, error) { return g.p.Capture(ctx, req) })
}

func (g *guarded) Void(ctx context.Context, req processor.VoidRequest) (processor.Result, error) {
	return g.run(ctx, openResult, func() (processor.Result, error) { return g.p.Void(ctx, req) })
}

func (g *guarded) Refund(ctx context.Context, req processor.RefundRequest) (processor.Result, error) {
	return g.run(ctx, openResult, func() (processor.Result, error) { return g.p.Refund(ctx, req) })
}

func (g *guarded) Payout(ctx context.Context, req processor.PayoutRequest) (processor.Result, error) {
	return g.run(ctx, openResult, func() (processor.Result, error) { return g.p.Payout(ctx, req) })
}

func (g *guarded) Lookup(ctx context.Context, op processor.Operation, key string) (processor.Result, error) {
	// NotFound is a healthy answer too: IsFailure counts only NotReached and Unknown.
	unasked := processor.Result{Status: processor.Unknown, Message: "circuit open"}
	return g.run(ctx, unasked, func() (processor.Result, error) { return g.p.Lookup(ctx, op, key) })
}
