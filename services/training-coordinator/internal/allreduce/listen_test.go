package allreduce

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// scripted is rank 0's transport in a ring of two whose previous rank sends the collective's
// messages and then closes its stream (it finished its last step), and whose next rank reads its
// last message late. It refuses a second receiver at the same time, as grpcring's Session may.
type scripted struct {
	mu        sync.Mutex
	in        []Message
	receiving atomic.Int32
	slowLast  time.Duration
	sends     int
	lastSend  int
	overlap   atomic.Bool
}

func (s *scripted) Send(ctx context.Context, m Message) error {
	s.mu.Lock()
	s.sends++
	n := s.sends
	s.mu.Unlock()
	if n == s.lastSend {
		select {
		case <-time.After(s.slowLast):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (s *scripted) Recv(ctx context.Context) (Message, error) {
	if s.receiving.Add(1) > 1 {
		s.overlap.Store(true)
	}
	defer s.receiving.Add(-1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.in) == 0 {
		return Message{}, fmt.Errorf("%w: stream ended", ErrPeerGone)
	}
	m := s.in[0]
	s.in = s.in[1:]
	return m, nil
}

// A previous rank that finished its last step and closed its stream is no failure of a rank still
// sending its own last message: the listen hears the stream's end and leaves it to the next
// receive (there is none), so the collective succeeds with the exact sum, with one receiver at a
// time and no goroutine left behind.
func TestListenIgnoresUpstreamThatFinished(t *testing.T) {
	const n = 8
	in := inputs(5, 2, n)
	want := Reference(in)
	before := runtime.NumGoroutine()
	for range 20 {
		lo1, hi1 := Segment(n, 2, 1)
		lo0, hi0 := Segment(n, 2, 0)
		// Rank 1's messages: its segment 1 in reduce-scatter, then the summed segment 0.
		seg0 := make([]float32, hi0-lo0)
		copy(seg0, want[lo0:hi0])
		tr := &scripted{slowLast: 30 * time.Millisecond, lastSend: 2, in: []Message{
			{Gen: 1, Step: 4, Phase: ReduceScatter, Segment: 1, Data: append([]float32(nil), in[1][lo1:hi1]...)},
			{Gen: 1, Step: 4, Phase: AllGather, Segment: 0, Data: seg0},
		}}
		v := append([]float32(nil), in[0]...)
		if _, err := (&Ring{Rank: 0, Size: 2, T: tr, Timeout: 2 * time.Second}).AllReduce(context.Background(), 1, 4, v); err != nil {
			t.Fatalf("collective failed although the previous rank only finished: %v", err)
		}
		if tr.overlap.Load() {
			t.Fatal("two receives ran at the same time on one transport")
		}
		for i := range v {
			if v[i] != want[i] {
				t.Fatalf("v[%d] = %v, want %v", i, v[i], want[i])
			}
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Fatalf("%d goroutines after the collectives, %d before", g, before)
	}
}

// A rank whose next rank failed and stopped reading is blocked in its send after its own segment
// has arrived; the abort reaches it from the previous rank and must end its collective then, not
// at the send's deadline, also when the previous rank was a round ahead and sent chunks of the next
// round before its abort (those are held, and the abort behind them still heard). The test is rank
// 2 of a ring of three whose rank 1 never reads.
func TestAbortReachesRankBlockedInSend(t *testing.T) {
	for _, ahead := range []int{0, 1, 3} {
		const timeout = 2 * time.Second
		mem := NewMemoryRing(3, 1)
		upstream := mem.Transport(2)
		v := make([]float32, 300) // three 100-value segments, ten chunks each
		done := make(chan error, 1)
		start := time.Now()
		go func() {
			_, err := (&Ring{Rank: 0, Size: 3, T: mem.Transport(0), Timeout: timeout, MaxChunk: 10}).AllReduce(context.Background(), 1, 1, v)
			done <- err
		}()
		ctx := context.Background()
		send := func(m Message) {
			if err := upstream.Send(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		for off := 0; off < 100; off += 10 {
			send(Message{Gen: 1, Step: 1, Phase: ReduceScatter, Segment: 2, Offset: uint32(off), Data: make([]float32, 10)})
		}
		// Rank 2's round-1 segment is segment 1, which rank 0 receives in round 1.
		for i := range ahead {
			send(Message{Gen: 1, Step: 1, Phase: ReduceScatter, Round: 1, Segment: 1, Offset: uint32(10 * i), Data: make([]float32, 10)})
		}
		send(Message{Gen: 1, Step: 1, Phase: Abort, Reason: "rank 2 failed"})
		err := <-done
		elapsed := time.Since(start)
		var e *Error
		if !errors.As(err, &e) || !e.Remote {
			t.Fatalf("%d chunks ahead: err = %v, want the abort from upstream", ahead, err)
		}
		// Its own abort to the rank that stopped reading waits a quarter of the timeout; the send
		// it was blocked in would have waited the whole timeout first.
		if elapsed >= timeout {
			t.Fatalf("%d chunks ahead: took %v to fail; the abort arrived long before the %v send deadline", ahead, elapsed, timeout)
		}
	}
}

// A chunk held while the send is blocked belongs to the next round; a Ring whose collective then
// succeeded delivers every message exactly once: over many steps on a memory ring whose links hold
// one message and whose downstream readers are slow, each rank's sums stay exact and no link is left
// with a message once all steps are done.
func TestHeldChunksDeliveredOnceOverSteps(t *testing.T) {
	const size, n, steps = 4, 64, 15
	mem := NewMemoryRing(size, 1)
	in := inputs(21, size, n)
	want := Reference(in)
	rings := make([]*Ring, size)
	for rank := range size {
		var tr Transport = mem.Transport(rank)
		if rank%2 == 1 {
			tr = slowReader{tr}
		}
		rings[rank] = &Ring{Rank: rank, Size: size, T: tr, Timeout: 5 * time.Second, MaxChunk: 3}
	}
	for step := range uint64(steps) {
		out := make([][]float32, size)
		errs := make([]error, size)
		var wg sync.WaitGroup
		for rank := range size {
			out[rank] = append([]float32(nil), in[rank]...)
			wg.Go(func() { _, errs[rank] = rings[rank].AllReduce(context.Background(), 1, step, out[rank]) })
		}
		wg.Wait()
		for rank := range size {
			if errs[rank] != nil {
				t.Fatalf("step %d rank %d: %v", step, rank, errs[rank])
			}
			assertSum(t, size, n, rank, in, want, out[rank])
		}
	}
	for rank, r := range rings {
		if r.held != nil {
			t.Fatalf("rank %d holds %+v after the last step", rank, r.held)
		}
	}
	for i, l := range mem.links {
		if k := len(l.ch); k != 0 {
			t.Fatalf("link %d still carries %d messages", i, k)
		}
	}
}
