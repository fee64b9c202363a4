package exchange

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// reporter sends a shard's executions and releases to the risk service, in journal order, after
// they are durable. It retries until risk accepts them: executions are idempotent by ExecID and a
// repeated release is harmless, so a report sent twice (after a crash and replay) changes nothing.
// acked tells the snapshotter how far the risk service is known to be up to date.
type reporter struct {
	risk    Risk
	log     *slog.Logger
	timeout time.Duration

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []reportBatch
	acked   uint64 // every report of journal records <= acked is settled
	closing bool
	stopped chan struct{}
	dropped int
}

type reportBatch struct {
	seq      uint64 // last journal record the batch covers
	execs    []Execution
	releases []uint64
}

// maxSettle bounds one Settle call.
const maxSettle = 2048

func newReporter(r Risk, log *slog.Logger, timeout time.Duration) *reporter {
	rp := &reporter{risk: r, log: log, timeout: timeout, stopped: make(chan struct{})}
	rp.cond = sync.NewCond(&rp.mu)
	return rp
}

func (rp *reporter) push(b reportBatch) {
	rp.mu.Lock()
	rp.queue = append(rp.queue, b)
	rp.mu.Unlock()
	rp.cond.Broadcast()
}

// waitAcked blocks until reports up to seq are settled or the reporter stops; it reports whether
// seq was reached.
func (rp *reporter) waitAcked(seq uint64) bool {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	for rp.acked < seq && !rp.isStopped() {
		rp.cond.Wait()
	}
	return rp.acked >= seq
}

func (rp *reporter) isStopped() bool {
	select {
	case <-rp.stopped:
		return true
	default:
		return false
	}
}

func (rp *reporter) ackedSeq() uint64 {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return rp.acked
}

// run delivers queued reports until close; it drains what is queued before it returns.
func (rp *reporter) run() {
	defer func() {
		close(rp.stopped)
		rp.cond.Broadcast()
	}()
	var execs []Execution
	var releases []uint64
	for {
		rp.mu.Lock()
		for len(rp.queue) == 0 && !rp.closing {
			rp.cond.Wait()
		}
		if len(rp.queue) == 0 {
			rp.mu.Unlock()
			return
		}
		batch := rp.queue
		rp.queue = nil
		rp.mu.Unlock()

		execs, releases = execs[:0], releases[:0]
		for _, b := range batch {
			execs = append(execs, b.execs...)
			releases = append(releases, b.releases...)
		}
		// Executions before releases: a fill always precedes the release of its order's rest.
		for len(execs) > 0 {
			n := min(len(execs), maxSettle)
			rp.settle(execs[:n], nil)
			execs = execs[n:]
		}
		for len(releases) > 0 {
			n := min(len(releases), maxSettle)
			rp.settle(nil, releases[:n])
			releases = releases[n:]
		}
		rp.mu.Lock()
		rp.acked = batch[len(batch)-1].seq
		rp.mu.Unlock()
		rp.cond.Broadcast()
	}
}

// settle retries transient failures with backoff; a permanent failure of a batch is narrowed down
// to the items that cause it, which are logged and dropped: retrying them can never succeed.
func (rp *reporter) settle(execs []Execution, releases []uint64) {
	backoff := 10 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), rp.timeout)
		err := rp.risk.Settle(ctx, execs, releases)
		cancel()
		if err == nil {
			return
		}
		if permanent(err) {
			if len(execs)+len(releases) > 1 {
				for i := range execs {
					rp.settle(execs[i:i+1], nil)
				}
				for i := range releases {
					rp.settle(nil, releases[i:i+1])
				}
				return
			}
			rp.mu.Lock()
			rp.dropped++
			rp.mu.Unlock()
			rp.log.Error("risk refused a settlement; dropped", "err", err, "executions", execs, "releases", releases)
			return
		}
		rp.log.Warn("risk settlement failed; retrying", "err", err, "backoff", backoff)
		time.Sleep(backoff)
		backoff = min(backoff*2, time.Second)
	}
}

// close asks run to finish after draining the queue and waits for it, at most until ctx ends.
func (rp *reporter) close(ctx context.Context) error {
	rp.mu.Lock()
	rp.closing = true
	rp.mu.Unlock()
	rp.cond.Broadcast()
	select {
	case <-rp.stopped:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
