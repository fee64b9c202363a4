package allreduce

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The abort must end the collective of a rank blocked in its send even when the previous rank had
// already sent a chunk of the next round before it failed (it was a round ahead: its own receive
// of that round is the one that failed). Here the test is rank 2 of a ring of three whose rank 1
// never reads: rank 2 sends rank 0 its round-0 segment, one chunk of round 1, then its abort.
func TestAbortAfterNextRoundChunkReachesRankBlockedInSend(t *testing.T) {
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
	for off := 0; off < 100; off += 10 {
		if err := upstream.Send(ctx, Message{Gen: 1, Step: 1, Phase: ReduceScatter, Segment: 2, Offset: uint32(off), Data: make([]float32, 10)}); err != nil {
			t.Fatal(err)
		}
	}
	// Rank 2's round-1 segment is segment 1, which rank 0 receives in round 1.
	if err := upstream.Send(ctx, Message{Gen: 1, Step: 1, Phase: ReduceScatter, Round: 1, Segment: 1, Data: make([]float32, 10)}); err != nil {
		t.Fatal(err)
	}
	if err := upstream.Send(ctx, Message{Gen: 1, Step: 1, Phase: Abort, Reason: "rank 2 failed"}); err != nil {
		t.Fatal(err)
	}
	err := <-done
	elapsed := time.Since(start)
	var e *Error
	if !errors.As(err, &e) || !e.Remote {
		t.Errorf("err = %v, want the abort from upstream", err)
	}
	if elapsed >= timeout {
		t.Fatalf("took %v to fail; the abort arrived long before the %v send deadline", elapsed, timeout)
	}
}
