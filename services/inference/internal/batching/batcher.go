// Package batching merges concurrent inference requests for one model version into batched
// executions and splits the results back: the dynamic batcher.
package batching

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/codes"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/inference/internal/tensor"
)

// ExecFunc runs the model once on batched inputs and returns its outputs, batch dimension first.
type ExecFunc func(inputs []tensor.Tensor) ([]tensor.Tensor, error)

// Config tunes a Batcher.
type Config struct {
	MaxBatchSize  int           // rows per execution at most
	MaxQueueDelay time.Duration // how long the oldest request may wait for company
	Preferred     []int         // batch sizes at which to stop waiting, ascending
	MaxQueueSize  int           // requests waiting at most; more are refused
	Instances     int           // executions that may run at once
	// StopWhenAllQueued ends the wait as soon as the batch holds every request submitted so far.
	// It suits a closed loop of local callers (who cannot send more while they wait); over a
	// network other requests are usually still on their way, so it is off by default and the batch
	// waits MaxQueueDelay, as Triton does.
	StopWhenAllQueued bool
	// OnQueued and OnExecute observe queue waits and executions; either may be nil.
	OnQueued  func(wait time.Duration)
	OnExecute func(rows int, compute time.Duration)
}

// ErrQueueFull is returned when the queue is at MaxQueueSize.
var ErrQueueFull = errs.New(errs.KindResourceExhausted, "batch queue is full")

// ErrClosed is returned by Submit after Close.
var ErrClosed = errs.New(errs.KindUnavailable, "model version is unloading")

// Batcher queues requests and runs them in batches on Instances workers.
//
// Goroutines: New starts Instances workers, which Close stops after the queue drains. A request
// that finds the server idle runs on its caller's goroutine instead, counted in wg so that Close
// waits for it too.
type Batcher struct {
	cfg   Config
	exec  ExecFunc
	queue chan *job
	// slots holds a token per instance executing, a worker's batch or a caller's own request.
	slots chan struct{}
	// freed gets a token when an instance finishes, so a batch waiting for company re-checks.
	freed chan struct{}
	// waiting counts jobs submitted and not yet executing (queued or in a batch being formed); it
	// is the bound MaxQueueSize applies to.
	waiting atomic.Int64
	// expect is the number of requests in the last batch: the company the next one waits for.
	expect atomic.Int64

	mu     sync.RWMutex
	closed bool
	wg     sync.WaitGroup
}

type job struct {
	ctx    context.Context
	inputs []tensor.Tensor
	rows   int64
	queued time.Time
	done   chan result
}

type result struct {
	outputs []tensor.Tensor
	err     error
}

// New starts a batcher's workers.
func New(cfg Config, exec ExecFunc) *Batcher {
	cfg.MaxBatchSize = max(cfg.MaxBatchSize, 1)
	cfg.MaxQueueSize = max(cfg.MaxQueueSize, 1)
	cfg.Instances = max(cfg.Instances, 1)
	b := &Batcher{cfg: cfg, exec: exec, queue: make(chan *job, cfg.MaxQueueSize),
		slots: make(chan struct{}, cfg.Instances), freed: make(chan struct{}, 1)}
	for range cfg.Instances {
		b.wg.Go(b.work)
	}
	return b
}

// Submit runs one request of rows rows (its inputs' first dimension) and waits for its outputs.
// On an idle server (an instance free, nothing waiting, and the last batch a single request, so
// no company is expected) it runs at once on the caller's goroutine: there is nothing to batch it
// with, and a hand-off to a worker would only add latency. Otherwise it queues, or is refused with
// ErrQueueFull when MaxQueueSize requests are already waiting.
func (b *Batcher) Submit(ctx context.Context, inputs []tensor.Tensor, rows int64) ([]tensor.Tensor, error) {
	j := &job{ctx: ctx, inputs: inputs, rows: rows, queued: time.Now(), done: make(chan result, 1)}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return nil, ErrClosed
	}
	if b.waiting.Load() == 0 && b.expect.Load() <= 1 {
		select {
		case b.slots <- struct{}{}:
			b.wg.Add(1)
			b.mu.RUnlock()
			defer b.wg.Done()
			b.run([]*job{j})
			r := <-j.done
			return r.outputs, r.err
		default:
		}
	}
	if b.waiting.Add(1) > int64(b.cfg.MaxQueueSize) {
		b.waiting.Add(-1)
		b.mu.RUnlock()
		return nil, ErrQueueFull
	}
	// Never blocks: the queue holds only waiting jobs, and there are at most MaxQueueSize.
	b.queue <- j
	b.mu.RUnlock()
	select {
	case r := <-j.done:
		return r.outputs, r.err
	case <-ctx.Done():
		// The worker skips or discards the job; done is buffered so it never blocks.
		return nil, ctx.Err()
	}
}

// Close stops accepting requests, finishes the queued ones and waits for the workers.
func (b *Batcher) Close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.queue)
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func (b *Batcher) work() {
	var carry *job
	for {
		first := carry
		carry = nil
		if first == nil {
			j, ok := <-b.queue
			if !ok {
				return
			}
			first = j
		}
		batch, next, open := b.collect(first)
		b.waiting.Add(-int64(len(batch)))
		b.expect.Store(int64(len(batch)))
		b.run(batch)
		carry = next
		if !open && carry == nil {
			return
		}
	}
}

// run executes a batch on the instance slot its caller holds, and frees the slot; requests whose
// callers gave up are left out.
func (b *Batcher) run(batch []*job) {
	defer func() {
		<-b.slots
		select {
		case b.freed <- struct{}{}:
		default:
		}
	}()
	live := batch[:0]
	start := time.Now()
	for _, j := range batch {
		if err := j.ctx.Err(); err != nil {
			j.done <- result{err: err}
			continue
		}
		if b.cfg.OnQueued != nil {
			b.cfg.OnQueued(start.Sub(j.queued))
		}
		live = append(live, j)
	}
	if len(live) == 0 {
		return
	}
	outs, err := b.execute(live)
	if err != nil && len(live) > 1 {
		// One bad request must not fail its neighbours: run each alone to find it.
		for _, j := range live {
			o, err := b.execute([]*job{j})
			j.done <- result{outputs: firstOf(o), err: err}
		}
		return
	}
	for i, j := range live {
		if err != nil {
			j.done <- result{err: err}
			continue
		}
		j.done <- result{outputs: outs[i]}
	}
}

func firstOf(o [][]tensor.Tensor) []tensor.Tensor {
	if len(o) == 0 {
		return nil
	}
	return o[0]
}

// execute merges the jobs' inputs, runs the model once and splits the outputs per job. A job
// alone runs on its own inputs, with nothing to merge or split, and no batch span (its request's
// span covers it).
func (b *Batcher) execute(jobs []*job) ([][]tensor.Tensor, error) {
	if len(jobs) == 1 {
		start := time.Now()
		outs, err := b.exec(jobs[0].inputs)
		if b.cfg.OnExecute != nil {
			b.cfg.OnExecute(int(jobs[0].rows), time.Since(start))
		}
		if err != nil {
			return nil, err
		}
		return [][]tensor.Tensor{outs}, nil
	}
	inputs := make([]tensor.Tensor, len(jobs[0].inputs))
	rows := make([]int64, len(jobs))
	var total int64
	for i, j := range jobs {
		rows[i] = j.rows
		total += j.rows
	}
	parts := make([]tensor.Tensor, len(jobs))
	for k := range inputs {
		for i, j := range jobs {
			parts[i] = j.inputs[k]
		}
		merged, err := tensor.Concat(parts)
		if err != nil {
			return nil, err
		}
		inputs[k] = merged
	}
	_, sp := span(jobs, total)
	start := time.Now()
	outs, err := b.exec(inputs)
	if b.cfg.OnExecute != nil {
		b.cfg.OnExecute(int(total), time.Since(start))
	}
	if err != nil {
		sp.RecordError(err)
		sp.SetStatus(codes.Error, "execution failed")
		sp.End()
		return nil, err
	}
	sp.End()
	perJob := make([][]tensor.Tensor, len(jobs))
	for i := range perJob {
		perJob[i] = make([]tensor.Tensor, len(outs))
	}
	for k, o := range outs {
		split, err := tensor.Split(o, rows)
		if err != nil {
			return nil, errors.Join(errs.New(errs.KindInternal, "split batched output"), err)
		}
		for i := range jobs {
			perJob[i][k] = split[i]
		}
	}
	return perJob, nil
}
