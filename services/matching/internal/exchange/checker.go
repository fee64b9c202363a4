package exchange

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// checker merges risk checks from many concurrent requests into few Check calls: whoever finds no
// call in flight starts one with everything queued, so under load each call carries a batch and an
// idle system pays no waiting.
type checker struct {
	risk     Risk
	timeout  time.Duration
	maxBatch int
	maxCalls int

	mu      sync.Mutex
	pending []checkRequest
	calls   int
	// buffers reuses the batch slices of finished calls.
	buffers sync.Pool
}

type checkBuffers struct {
	batch  []checkRequest
	checks []RiskCheck
}

type checkRequest struct {
	check RiskCheck
	trace trace.SpanContext
	done  func(RiskDecision, error)
}

func newChecker(r Risk, timeout time.Duration) *checker {
	return &checker{risk: r, timeout: timeout, maxBatch: 1024, maxCalls: 4}
}

// submit queues a check; done runs on a checker goroutine once the risk service has answered.
func (k *checker) submit(ctx context.Context, c RiskCheck, done func(RiskDecision, error)) {
	k.mu.Lock()
	k.pending = append(k.pending, checkRequest{c, trace.SpanContextFromContext(ctx), done})
	start := k.calls < k.maxCalls
	if start {
		k.calls++
	}
	k.mu.Unlock()
	if start {
		go k.run()
	}
}

func (k *checker) run() {
	bufs, _ := k.buffers.Get().(*checkBuffers)
	if bufs == nil {
		bufs = &checkBuffers{}
	}
	batch, checks := bufs.batch, bufs.checks
	for {
		k.mu.Lock()
		if len(k.pending) == 0 {
			k.calls--
			k.mu.Unlock()
			clear(batch)
			bufs.batch, bufs.checks = batch[:0], checks[:0]
			k.buffers.Put(bufs)
			return
		}
		n := min(len(k.pending), k.maxBatch)
		batch = append(batch[:0], k.pending[:n]...)
		k.pending = append(k.pending[:0], k.pending[n:]...)
		k.mu.Unlock()

		checks = checks[:0]
		for _, r := range batch {
			checks = append(checks, r.check)
		}
		ctx, span := k.span(batch)
		ctx, cancel := context.WithTimeout(ctx, k.timeout)
		decisions, err := k.risk.Check(ctx, checks)
		cancel()
		span.End()
		for i, r := range batch {
			if err != nil {
				r.done(RiskDecision{}, err)
			} else {
				r.done(decisions[i], nil)
			}
		}
	}
}

// maxLinks bounds the links of one batch span.
const maxLinks = 32

// span starts the batch's span in the trace of its first traced order, linked to the others: one
// risk call serves many orders, and each order's trace should lead to it.
func (k *checker) span(batch []checkRequest) (context.Context, trace.Span) {
	ctx := context.Background()
	var links []trace.Link
	for _, r := range batch {
		if !r.trace.IsValid() {
			continue
		}
		if !trace.SpanContextFromContext(ctx).IsValid() {
			ctx = trace.ContextWithSpanContext(ctx, r.trace)
		} else if len(links) < maxLinks {
			links = append(links, trace.Link{SpanContext: r.trace})
		}
	}
	return otel.Tracer("bourse/matching").Start(ctx, "risk check batch",
		trace.WithLinks(links...), trace.WithAttributes(attribute.Int("orders", len(batch))))
}
