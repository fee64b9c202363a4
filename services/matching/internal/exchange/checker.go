package exchange

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// checker merges risk checks from many concurrent requests into few Check calls: whoever finds no
// call in flight starts one with everything queued, so under load each call carries a batch and an
// idle system pays no waiting.
type checker struct {
	risk     Risk
	timeout  time.Duration
	maxBatch int
	maxCalls int
	owner    string
	session  uint64
	// onAnswer sees every answer's risk incarnation; onUnknown runs after a call that failed in a way
	// that may have reserved (a timeout), so a re-sync can drop what nobody will release.
	onAnswer  func(incarnation uint64)
	onUnknown func(err error)

	mu      sync.Mutex
	pending []checkRequest
	calls   int
	// generation is sent with every call; inflight counts calls in flight by generation, and idle
	// is signalled as they finish (see resync.go).
	generation uint64
	inflight   map[uint64]int
	idle       sync.Cond
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
	k := &checker{risk: r, timeout: timeout, maxBatch: 1024, maxCalls: 4, inflight: map[uint64]int{},
		onAnswer: func(uint64) {}, onUnknown: func(error) {}}
	k.idle.L = &k.mu
	return k
}

// bump starts a new generation for the calls sent from now on and returns the previous one.
func (k *checker) bump() uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.generation++
	return k.generation - 1
}

// waitIdle waits until no call of generation <= g is in flight (their answers have been handed
// to their callers), or quit closes; it reports whether it got there. Calls end within the risk
// timeout, so this does not wait long.
func (k *checker) waitIdle(g uint64, quit <-chan struct{}) bool {
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-quit:
			k.mu.Lock()
			k.idle.Broadcast()
			k.mu.Unlock()
		case <-stop:
		}
	}()
	k.mu.Lock()
	defer k.mu.Unlock()
	for {
		busy := false
		for gen, n := range k.inflight {
			if gen <= g && n > 0 {
				busy = true
			}
		}
		if !busy {
			return true
		}
		select {
		case <-quit:
			return false
		default:
		}
		k.idle.Wait()
	}
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
		gen := k.generation
		k.inflight[gen]++
		k.mu.Unlock()

		checks = checks[:0]
		for _, r := range batch {
			checks = append(checks, r.check)
		}
		ctx, span := k.span(batch)
		ctx, cancel := context.WithTimeout(ctx, k.timeout)
		ans, err := k.risk.Check(ctx, CheckBatch{Owner: k.owner, Session: k.session, Generation: gen, Checks: checks})
		cancel()
		span.End()
		if err == nil && len(ans.Decisions) != len(checks) {
			err = errs.New(errs.KindUnavailable, "risk answered %d of %d checks", len(ans.Decisions), len(checks))
		}
		if err == nil {
			k.onAnswer(ans.Incarnation)
		}
		for i, r := range batch {
			if err != nil {
				r.done(RiskDecision{}, err)
			} else {
				r.done(ans.Decisions[i], nil)
			}
		}
		k.mu.Lock()
		if k.inflight[gen]--; k.inflight[gen] == 0 {
			delete(k.inflight, gen)
		}
		k.idle.Broadcast()
		k.mu.Unlock()
		if err != nil && !permanent(err) {
			k.onUnknown(err)
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
