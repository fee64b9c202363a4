package batching

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/inference/internal/tensor"
)

// doubling is the model under these tests: one INT32 input, output = 2 × input, row by row. It
// records the batch sizes it ran, and fails any batch that contains the value -1.
type doubling struct {
	mu      sync.Mutex
	batches []int64
	gate    chan struct{} // when set, each execution waits for a token
	entered chan struct{} // when set, each execution reports its start here first
}

func (d *doubling) exec(in []tensor.Tensor) ([]tensor.Tensor, error) {
	if d.entered != nil {
		d.entered <- struct{}{}
	}
	if d.gate != nil {
		<-d.gate
	}
	d.mu.Lock()
	d.batches = append(d.batches, in[0].Shape[0])
	d.mu.Unlock()
	out := make([]byte, len(in[0].Data))
	for i := 0; i < len(out); i += 4 {
		v := int32(binary.LittleEndian.Uint32(in[0].Data[i:]))
		if v == -1 {
			return nil, errors.New("poisoned input")
		}
		binary.LittleEndian.PutUint32(out[i:], uint32(2*v))
	}
	return []tensor.Tensor{{Name: "y", Datatype: tensor.Int32, Shape: in[0].Shape, Data: out}}, nil
}

func input(vals ...int32) []tensor.Tensor {
	b := make([]byte, 0, 4*len(vals))
	for _, v := range vals {
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	return []tensor.Tensor{{Name: "x", Datatype: tensor.Int32, Shape: []int64{int64(len(vals)), 1}, Data: b}}
}

func values(t tensor.Tensor) []int32 {
	out := make([]int32, len(t.Data)/4)
	for i := range out {
		out[i] = int32(binary.LittleEndian.Uint32(t.Data[4*i:]))
	}
	return out
}

// Requests that queue while the instance executes form the next batches, each caller getting its
// own rows back. The first request (run at once on an idle server) is held executing until the
// others are queued, so the test does not depend on how fast goroutines start.
func TestConcurrentRequestsShareExecutionsAndGetTheirOwnRows(t *testing.T) {
	const clients = 32
	d := &doubling{gate: make(chan struct{}), entered: make(chan struct{}, clients)}
	var execs, rows atomic.Int64
	b := New(Config{MaxBatchSize: 16, MaxQueueDelay: 20 * time.Millisecond, MaxQueueSize: 100,
		OnExecute: func(n int, _ time.Duration) { execs.Add(1); rows.Add(int64(n)) }}, d.exec)
	defer b.Close()
	var wg sync.WaitGroup
	errCh := make(chan error, clients)
	client := func(i int) {
		wg.Go(func() {
			out, err := b.Submit(context.Background(), input(int32(i), int32(1000+i)), 2)
			if err != nil {
				errCh <- err
				return
			}
			got := values(out[0])
			if len(got) != 2 || got[0] != 2*int32(i) || got[1] != 2*int32(1000+i) || out[0].Shape[0] != 2 {
				errCh <- errors.New("client got someone else's rows")
			}
		})
	}
	client(0)
	<-d.entered
	for i := 1; i < clients; i++ {
		client(i)
	}
	waitFor(t, "the other requests to queue", func() bool { return b.waiting.Load() == clients-1 })
	close(d.gate)
	wg.Wait()
	close(errCh)
	for err := range errCh {
		t.Fatal(err)
	}
	if rows.Load() != 2*clients {
		t.Fatalf("rows executed %d, want %d", rows.Load(), 2*clients)
	}
	// 1 + 31 requests of 2 rows in batches of at most 16 rows: 1 + 4 executions.
	if execs.Load() != 5 {
		t.Fatalf("%d executions for %d requests, want 5", execs.Load(), clients)
	}
	for _, n := range d.batches {
		if n > 16 {
			t.Fatalf("a batch of %d rows exceeds the maximum 16", n)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestALoneRequestDoesNotWaitForCompany(t *testing.T) {
	d := &doubling{}
	b := New(Config{MaxBatchSize: 8, MaxQueueDelay: time.Second, MaxQueueSize: 10, StopWhenAllQueued: true}, d.exec)
	defer b.Close()
	start := time.Now()
	if _, err := b.Submit(context.Background(), input(1, 2), 2); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited > 500*time.Millisecond {
		t.Fatalf("the only waiting request waited %v for others", waited)
	}
}

// On an idle server a lone request runs at once: waiting for company could only add latency, and
// requests arriving meanwhile form the next batch. (Triton waits out max_queue_delay here; that
// made batching slower than no batching at low load.)
func TestALoneRequestOnAnIdleServerRunsAtOnce(t *testing.T) {
	d := &doubling{}
	b := New(Config{MaxBatchSize: 8, MaxQueueDelay: time.Second, MaxQueueSize: 10}, d.exec)
	defer b.Close()
	start := time.Now()
	if _, err := b.Submit(context.Background(), input(1, 2), 2); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited > 500*time.Millisecond {
		t.Fatalf("the only request waited %v on an idle server", waited)
	}
}

// held is a one-instance batcher whose model blocks for the input value 0 until it gets a token
// from release, and runs any other input at once.
type held struct {
	*Batcher
	d       *doubling
	release chan struct{}
	held    chan struct{} // a token when a held execution starts
}

func newHeld(t *testing.T, cfg Config) *held {
	h := &held{d: &doubling{}, release: make(chan struct{}), held: make(chan struct{}, 1)}
	h.Batcher = New(cfg, func(in []tensor.Tensor) ([]tensor.Tensor, error) {
		if values(in[0])[0] == 0 {
			h.held <- struct{}{}
			<-h.release
		}
		return h.d.exec(in)
	})
	t.Cleanup(h.Close)
	return h
}

// hold occupies the instance with a request that runs until release gets a token.
func (h *held) hold(t *testing.T) {
	t.Helper()
	go func() { _, _ = h.Submit(context.Background(), input(0), 1) }()
	<-h.held
}

// submitAll queues n single-row requests behind the held one and returns when all have answered.
func (h *held) submitAll(t *testing.T, n int) <-chan time.Time {
	t.Helper()
	before := h.waiting.Load()
	done := make(chan time.Time, 1)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := h.Submit(context.Background(), input(int32(i+1)), 1); err != nil {
				t.Error(err)
			}
		})
	}
	waitFor(t, "the requests to queue", func() bool { return h.waiting.Load() == before+int64(n) })
	go func() { wg.Wait(); done <- time.Now() }()
	return done
}

// After a batch of 3 the next batch expects 3 requests: a request arriving alone waits out the
// queue delay for the other two (in a closed loop of three callers they are on their way); the
// batch after it, of one, expects nobody, and the next lone request runs at once.
func TestTheLastBatchSizeIsTheCompanyToExpect(t *testing.T) {
	const delay = 500 * time.Millisecond
	h := newHeld(t, Config{MaxBatchSize: 8, MaxQueueDelay: delay, MaxQueueSize: 10})
	h.hold(t)
	done := h.submitAll(t, 3)
	h.release <- struct{}{}
	<-done
	if got := h.expect.Load(); got != 3 {
		t.Fatalf("expecting %d after a batch of 3", got)
	}
	lone := func() time.Duration {
		start := time.Now()
		if _, err := h.Submit(context.Background(), input(7), 1); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	if waited := lone(); waited < delay*8/10 {
		t.Fatalf("a lone request expecting company ran after %v, before the %v delay", waited, delay)
	}
	if waited := lone(); waited >= delay*8/10 {
		t.Fatalf("a lone request expecting nobody waited %v", waited)
	}
}

// A batch formed while the instance is busy runs as soon as it is free, not after the delay.
func TestABatchRunsWhenTheInstanceIsFree(t *testing.T) {
	h := newHeld(t, Config{MaxBatchSize: 8, MaxQueueDelay: time.Second, MaxQueueSize: 10})
	h.hold(t)
	done := h.submitAll(t, 2)
	released := time.Now()
	h.release <- struct{}{}
	if ran := (<-done).Sub(released); ran > 500*time.Millisecond {
		t.Fatalf("the waiting batch ran %v after the instance was free (queue delay 1s)", ran)
	}
	h.d.mu.Lock()
	defer h.d.mu.Unlock()
	if !slices.Equal(h.d.batches, []int64{1, 2}) {
		t.Fatalf("executions of %v rows, want the held one then one of both queued requests", h.d.batches)
	}
}

// collect is driven directly here (no workers), expecting more company than comes and with one
// extra job counted as waiting elsewhere, so only the preferred size can end the wait early.
func TestPreferredSizeEndsTheWaitEarly(t *testing.T) {
	b := &Batcher{cfg: Config{MaxBatchSize: 8, MaxQueueDelay: time.Second, Preferred: []int{2}}, queue: make(chan *job, 4),
		slots: make(chan struct{}, 1), freed: make(chan struct{}, 1)}
	b.expect.Store(8) // the last batch had 8 requests, so this one would wait for company
	mk := func() *job {
		return &job{ctx: context.Background(), inputs: input(1), rows: 1, queued: time.Now(), done: make(chan result, 1)}
	}
	first, second := mk(), mk()
	b.queue <- second
	b.waiting.Store(3)
	start := time.Now()
	batch, next, open := b.collect(first)
	<-b.slots // the instance collect took for the batch
	if len(batch) != 2 || next != nil || !open {
		t.Fatalf("batch of %d, next %v, open %v", len(batch), next, open)
	}
	if waited := time.Since(start); waited > 500*time.Millisecond {
		t.Fatalf("a preferred-size batch waited %v", waited)
	}
	// Without a preferred size it waits out the delay.
	b.cfg.Preferred = nil
	b.cfg.MaxQueueDelay = 50 * time.Millisecond
	b.queue <- mk()
	start = time.Now()
	if batch, _, _ := b.collect(mk()); len(batch) != 2 || time.Since(start) < 40*time.Millisecond {
		t.Fatalf("batch of %d after %v: want 2 after the delay", len(batch), time.Since(start))
	}
}

func TestFullQueueIsResourceExhausted(t *testing.T) {
	d := &doubling{gate: make(chan struct{}), entered: make(chan struct{}, 3)}
	b := New(Config{MaxBatchSize: 1, MaxQueueSize: 2}, d.exec)
	ctx := t.Context()
	results := make(chan error, 4)
	submit := func(i int) {
		go func() { _, err := b.Submit(ctx, input(int32(i)), 1); results <- err }()
	}
	// One executing (blocked on the gate) first, then two queued: submitted together, the third
	// could find the first still queued and be refused itself.
	submit(0)
	select {
	case <-d.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the first request never started")
	}
	deadline := time.Now().Add(5 * time.Second)
	submit(1)
	submit(2)
	for b.waiting.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("queue never filled (%d waiting)", b.waiting.Load())
		}
		time.Sleep(time.Millisecond)
	}
	_, err := b.Submit(ctx, input(9), 1)
	if errs.KindOf(err) != errs.KindResourceExhausted {
		t.Fatalf("submit to a full queue: %v, want ResourceExhausted", err)
	}
	close(d.gate)
	for range 3 {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	b.Close()
	if _, err := b.Submit(ctx, input(1), 1); errs.KindOf(err) != errs.KindUnavailable {
		t.Fatalf("submit after close: %v, want Unavailable", err)
	}
}

func TestOneBadRequestDoesNotFailItsBatch(t *testing.T) {
	d := &doubling{gate: make(chan struct{}), entered: make(chan struct{}, 8)}
	b := New(Config{MaxBatchSize: 8, MaxQueueDelay: 50 * time.Millisecond, MaxQueueSize: 10}, d.exec)
	defer b.Close()
	var wg sync.WaitGroup
	var good, bad error
	// A first request holds the instance so that the good and the bad one queue into one batch.
	wg.Go(func() { _, _ = b.Submit(context.Background(), input(5), 1) })
	<-d.entered
	wg.Go(func() { _, good = b.Submit(context.Background(), input(3), 1) })
	wg.Go(func() { _, bad = b.Submit(context.Background(), input(-1), 1) })
	waitFor(t, "both requests to queue", func() bool { return b.waiting.Load() == 2 })
	close(d.gate)
	wg.Wait()
	if good != nil {
		t.Fatalf("good request failed with its poisoned neighbour: %v", good)
	}
	if bad == nil {
		t.Fatal("poisoned request succeeded")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.batches) != 4 || d.batches[1] != 2 {
		t.Fatalf("executions of %v rows, want 1, then 2 (failed), then each alone", d.batches)
	}
}

func TestCancelledRequestIsNotExecuted(t *testing.T) {
	d := &doubling{gate: make(chan struct{}), entered: make(chan struct{}, 4)}
	b := New(Config{MaxBatchSize: 1, MaxQueueSize: 4}, d.exec)
	go func() { _, _ = b.Submit(context.Background(), input(1), 1) }() // occupies the worker
	<-d.entered
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := b.Submit(ctx, input(2), 1); done <- err }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled submit returned %v", err)
	}
	close(d.gate)
	b.Close()
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.batches) != 1 {
		t.Fatalf("%d executions, want 1: the cancelled request ran", len(d.batches))
	}
}

// BenchmarkBatcherOverhead is the queueing, merging and splitting cost per request around a
// trivial model, from 64 concurrent callers.
func BenchmarkBatcherOverhead(b *testing.B) {
	d := &doubling{}
	bt := New(Config{MaxBatchSize: 64, MaxQueueDelay: 100 * time.Microsecond, MaxQueueSize: 4096, Instances: 2}, d.exec)
	defer bt.Close()
	b.ReportAllocs()
	b.SetParallelism(64 / max(1, runtimeProcs()))
	b.RunParallel(func(pb *testing.PB) {
		in := input(7)
		for pb.Next() {
			if _, err := bt.Submit(context.Background(), in, 1); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
