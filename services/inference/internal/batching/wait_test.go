package batching

import (
	"testing"
	"time"
)

// busy is a batcher with no workers.
func busy() *Batcher {
	return &Batcher{queue: make(chan *job, 1), slots: make(chan struct{}, 1), freed: make(chan struct{}, 1)}
}

func never() bool { return false }

// await never ends a wait early, through both its timer and its polling part.
func TestAwaitReturnsNoSoonerThanTheDeadline(t *testing.T) {
	for _, d := range []time.Duration{200 * time.Microsecond, 3 * time.Millisecond} {
		b := busy()
		deadline := time.Now().Add(d)
		if _, _, got := b.await(deadline, never); got {
			t.Fatalf("%v: await returned a job from an empty queue", d)
		}
		if early := time.Until(deadline); early > 0 {
			t.Fatalf("%v: await returned %v before its deadline", d, early)
		}
	}
}

// A job that arrives during the wait ends it with that job.
func TestAwaitReturnsAJobThatArrives(t *testing.T) {
	b := busy()
	j := &job{rows: 1}
	go func() {
		time.Sleep(time.Millisecond)
		b.queue <- j
	}()
	got, ok, arrived := b.await(time.Now().Add(5*time.Second), never)
	if !arrived || !ok || got != j {
		t.Fatalf("await = %v, %v, %v; want the job", got, ok, arrived)
	}
}

// BenchmarkQueueDelay is how late a 500µs queue delay ends, waited by await and, for comparison,
// by a plain timer (what the batcher used before): µs-late is the mean overshoot.
func BenchmarkQueueDelay(b *testing.B) {
	const delay = 500 * time.Microsecond
	report := func(b *testing.B, late time.Duration) {
		b.ReportMetric(float64(late.Microseconds())/float64(b.N), "µs-late")
	}
	b.Run("await", func(b *testing.B) {
		bt := busy()
		var late time.Duration
		b.ReportAllocs()
		for b.Loop() {
			deadline := time.Now().Add(delay)
			bt.await(deadline, never)
			late += time.Since(deadline)
		}
		report(b, late)
	})
	b.Run("timer", func(b *testing.B) {
		var late time.Duration
		b.ReportAllocs()
		for b.Loop() {
			deadline := time.Now().Add(delay)
			t := time.NewTimer(delay)
			<-t.C
			late += time.Since(deadline)
		}
		report(b, late)
	})
}
