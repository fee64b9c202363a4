package breaker

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/services/payment/internal/processor"

	"github.com/bourse-dev/bourse/pkg/testenv"
)

func newTest(t *testing.T) (*Breaker, *testenv.Clock, *[]string) {
	t.Helper()
	c := testenv.NewClock(time.Unix(1_700_000_000, 0))
	var changes []string
	var mu sync.Mutex
	b := New("acquirer", Config{
		Window: 10 * time.Second, Buckets: 10, MinCalls: 10, FailureRatio: 0.5, CoolDown: 5 * time.Second,
		Now: c.Now,
		OnChange: func(name string, from, to State) {
			mu.Lock()
			changes = append(changes, name+":"+from.String()+">"+to.String())
			mu.Unlock()
		},
	})
	return b, c, &changes
}

func call(t *testing.T, b *Breaker, s processor.Status) {
	t.Helper()
	tk, ok := b.Allow()
	if !ok {
		t.Fatalf("call refused in state %v", b.State())
	}
	tk.Record(s)
}

func TestDeclinesNeverOpen(t *testing.T) {
	b, _, _ := newTest(t)
	for range 100 {
		call(t, b, processor.Declined)
	}
	if b.State() != Closed {
		t.Fatalf("state %v after declines", b.State())
	}
}

func TestOpensAtRatioOnceMinCalls(t *testing.T) {
	b, _, changes := newTest(t)
	for range 5 {
		call(t, b, processor.Approved)
	}
	for range 4 {
		call(t, b, processor.NotReached)
	}
	if b.State() != Closed {
		t.Fatalf("opened with 9 outcomes (< MinCalls): %v", b.State())
	}
	call(t, b, processor.Unknown) // 5 of 10 failed: 0.5
	if b.State() != Open {
		t.Fatalf("state %v at 5/10 failures, want open", b.State())
	}
	if _, ok := b.Allow(); ok {
		t.Fatal("open breaker allowed a call")
	}
	if len(*changes) != 1 || (*changes)[0] != "acquirer:closed>open" {
		t.Fatalf("changes %v", *changes)
	}
}

func TestStaysClosedBelowRatio(t *testing.T) {
	b, _, _ := newTest(t)
	for range 6 {
		call(t, b, processor.Approved)
	}
	for range 4 {
		call(t, b, processor.NotReached)
	}
	if b.State() != Closed {
		t.Fatalf("state %v at 4/10 failures", b.State())
	}
}

func TestOldFailuresLeaveTheWindow(t *testing.T) {
	b, c, _ := newTest(t)
	for range 9 {
		call(t, b, processor.NotReached)
	}
	c.Advance(11 * time.Second)
	call(t, b, processor.NotReached)
	if b.State() != Closed {
		t.Fatalf("failures older than the window counted: %v", b.State())
	}
	for range 9 {
		call(t, b, processor.NotReached)
	}
	if b.State() != Open {
		t.Fatalf("10 failures inside the window: %v", b.State())
	}
}

func trip(t *testing.T, b *Breaker) {
	t.Helper()
	for range 10 {
		call(t, b, processor.NotReached)
	}
	if b.State() != Open {
		t.Fatalf("not open after 10 failures: %v", b.State())
	}
}

func TestHalfOpenOneProbe(t *testing.T) {
	for _, tc := range []struct {
		probe processor.Status
		want  State
	}{
		{processor.Approved, Closed},
		{processor.Declined, Closed},
		{processor.NotReached, Open},
		{processor.Unknown, Open},
	} {
		t.Run(tc.probe.String(), func(t *testing.T) {
			b, c, changes := newTest(t)
			trip(t, b)
			c.Advance(4 * time.Second)
			if _, ok := b.Allow(); ok {
				t.Fatal("allowed before the cool-down")
			}
			c.Advance(time.Second)
			if b.State() != HalfOpen {
				t.Fatalf("state %v after the cool-down", b.State())
			}
			probe, ok := b.Allow()
			if !ok {
				t.Fatal("no probe after the cool-down")
			}
			if _, ok := b.Allow(); ok {
				t.Fatal("a second call while the probe is out")
			}
			probe.Record(tc.probe)
			if b.State() != tc.want {
				t.Fatalf("after a %v probe: %v, want %v (changes %v)", tc.probe, b.State(), tc.want, *changes)
			}
			if tc.want == Open {
				if _, ok := b.Allow(); ok {
					t.Fatal("allowed right after a failed probe: the cool-down must restart")
				}
				c.Advance(5 * time.Second)
				if _, ok := b.Allow(); !ok {
					t.Fatal("no new probe after the second cool-down")
				}
			} else {
				// Closed again with an empty window: nine failures do not reopen it.
				for range 9 {
					call(t, b, processor.NotReached)
				}
				if b.State() != Closed {
					t.Fatalf("the window was not reset on closing: %v", b.State())
				}
			}
		})
	}
}

func TestLostProbeIsReplacedAndIgnored(t *testing.T) {
	b, c, _ := newTest(t)
	trip(t, b)
	c.Advance(5 * time.Second)
	lost, ok := b.Allow()
	if !ok {
		t.Fatal("no probe")
	}
	c.Advance(5 * time.Second)
	second, ok := b.Allow()
	if !ok {
		t.Fatal("a probe that never reported blocks the breaker forever")
	}
	lost.Record(processor.Approved) // late: must not close the circuit
	if b.State() != HalfOpen {
		t.Fatalf("a stale probe changed the state to %v", b.State())
	}
	second.Record(processor.Approved)
	if b.State() != Closed {
		t.Fatalf("state %v after the live probe succeeded", b.State())
	}
}

func TestCancelGivesProbeBack(t *testing.T) {
	b, c, _ := newTest(t)
	trip(t, b)
	c.Advance(5 * time.Second)
	p, _ := b.Allow()
	p.Cancel()
	if _, ok := b.Allow(); !ok {
		t.Fatal("a canceled probe kept the slot")
	}
}

func TestOutcomeOfAnOlderStateIsIgnored(t *testing.T) {
	b, c, _ := newTest(t)
	slow, _ := b.Allow() // starts while closed
	trip(t, b)
	c.Advance(5 * time.Second)
	probe, _ := b.Allow()
	slow.Record(processor.Approved) // a call from before the circuit opened finishing now
	if b.State() != HalfOpen {
		t.Fatalf("an outcome from the closed generation changed half-open to %v", b.State())
	}
	probe.Record(processor.NotReached)
	if b.State() != Open {
		t.Fatalf("state %v", b.State())
	}
}

func TestConcurrentHalfOpenLetsOneProbe(t *testing.T) {
	b, c, _ := newTest(t)
	trip(t, b)
	c.Advance(5 * time.Second)
	var allowed atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 50 {
		wg.Go(func() {
			<-start
			if _, ok := b.Allow(); ok {
				allowed.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if n := allowed.Load(); n != 1 {
		t.Fatalf("%d probes let through, want 1", n)
	}
}

func TestSet(t *testing.T) {
	var nilSet *Set
	if tk, ok := nilSet.Allow("x"); !ok {
		t.Fatal("a nil set refused")
	} else {
		tk.Record(processor.Unknown) // a no-op, must not panic
	}
	s := NewSet(Config{MinCalls: 1, FailureRatio: 1})
	tk, _ := s.Allow("a")
	tk.Record(processor.NotReached)
	if _, ok := s.Allow("a"); ok {
		t.Fatal("a's breaker did not open")
	}
	if _, ok := s.Allow("b"); !ok {
		t.Fatal("b shares a's breaker")
	}
}
