package batching

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// Without dynamic batching the queue is bounded too: with the instance busy and MaxQueueSize
// requests waiting, the next one is refused at once, and a waiting request that gives up frees its
// place.
func TestDirectQueueIsBounded(t *testing.T) {
	d := &doubling{gate: make(chan struct{}), entered: make(chan struct{}, 4)}
	x := NewDirect(Config{Instances: 1, MaxQueueSize: 2}, d.exec)
	results := make(chan error, 4)
	submit := func(ctx context.Context, v int32) {
		go func() { _, err := x.Submit(ctx, input(v), 1); results <- err }()
	}
	submit(context.Background(), 0)
	<-d.entered
	ctx, cancel := context.WithCancel(context.Background())
	submit(ctx, 1)
	submit(context.Background(), 2)
	waitFor(t, "two requests waiting", func() bool { return x.waiting.Load() == 2 })
	if _, err := x.Submit(context.Background(), input(9), 1); errs.KindOf(err) != errs.KindResourceExhausted {
		t.Fatalf("submit to a full queue: %v, want ResourceExhausted", err)
	}
	cancel()
	if err := <-results; !errors.Is(err, context.Canceled) {
		t.Fatalf("the cancelled waiting request returned %v", err)
	}
	waitFor(t, "the cancelled request to leave the queue", func() bool { return x.waiting.Load() == 1 })
	submit(context.Background(), 3)
	waitFor(t, "two requests waiting again", func() bool { return x.waiting.Load() == 2 })
	close(d.gate)
	for range 3 {
		select {
		case err := <-results:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a queued request never ran")
		}
	}
	if x.waiting.Load() != 0 {
		t.Fatalf("%d requests still counted as waiting", x.waiting.Load())
	}
}

// Instances bounds the executions that run at once.
func TestDirectRunsAtMostInstancesAtOnce(t *testing.T) {
	d := &doubling{gate: make(chan struct{}), entered: make(chan struct{}, 4)}
	x := NewDirect(Config{Instances: 2, MaxQueueSize: 4}, d.exec)
	results := make(chan error, 3)
	for i := range 3 {
		go func() { _, err := x.Submit(context.Background(), input(int32(i)), 1); results <- err }()
	}
	<-d.entered
	<-d.entered
	waitFor(t, "the third request to wait", func() bool { return x.waiting.Load() == 1 })
	select {
	case <-d.entered:
		t.Fatal("a third execution started with 2 instances")
	case <-time.After(20 * time.Millisecond):
	}
	close(d.gate)
	for range 3 {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
}
