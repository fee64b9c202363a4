package exchange

import (
	"context"
	"sync"
	"time"
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
	done  func(RiskDecision, error)
}

func newChecker(r Risk, timeout time.Duration) *checker {
	return &checker{risk: r, timeout: timeout, maxBatch: 1024, maxCalls: 4}
}

// submit queues a check; done runs on a checker goroutine once the risk service has answered.
func (k *checker) submit(c RiskCheck, done func(RiskDecision, error)) {
	k.mu.Lock()
	k.pending = append(k.pending, checkRequest{c, done})
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
		ctx, cancel := context.WithTimeout(context.Background(), k.timeout)
		decisions, err := k.risk.Check(ctx, checks)
		cancel()
		for i, r := range batch {
			if err != nil {
				r.done(RiskDecision{}, err)
			} else {
				r.done(decisions[i], nil)
			}
		}
	}
}
