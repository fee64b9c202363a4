package exchange

import (
	"testing"
	"time"

	"github.com/bourse-dev/bourse/services/matching/internal/book"
)

// pauseShard holds a market's shard goroutine inside a query until the returned func is called, so
// a test can see what reaches the shard's queue meanwhile. Defer the release after closeTest.
func pauseShard(t *testing.T, x *Exchange, symbol string) (release func()) {
	t.Helper()
	m, err := x.market(symbol)
	if err != nil {
		t.Fatal(err)
	}
	held, gate := make(chan struct{}), make(chan struct{})
	if err := m.shard.enqueue(command{kind: cmdQuery, query: func(*output) { close(held); <-gate }}); err != nil {
		t.Fatal(err)
	}
	<-held
	released := false
	release = func() {
		if !released {
			released = true
			close(gate)
		}
	}
	return release
}

func queued(x *Exchange, symbol string) int {
	m, _ := x.market(symbol)
	m.shard.mu.Lock()
	defer m.shard.mu.Unlock()
	return len(m.shard.queue)
}

// TestSubscribeTakesOneQueueSlotPerShard: one request naming a symbol 200,000 times neither fills
// the shard's command queue nor refuses another account's order, and gets one snapshot.
func TestSubscribeTakesOneQueueSlotPerShard(t *testing.T) {
	x := openTest(t, t.TempDir(), newFakeRisk())
	defer closeTest(t, x)
	addSymbol(t, x, "BTC-USD")
	addSymbol(t, x, "ETH-USD")
	release := pauseShard(t, x, "BTC-USD")
	defer release()

	names := make([]string, 200_000)
	for i := range names {
		names[i] = "BTC-USD"
	}
	sub, err := x.Subscribe(names, 10, 64)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	defer sub.Close()
	if n := queued(x, "BTC-USD"); n != 1 {
		t.Fatalf("subscription took %d queue slots, want 1", n)
	}
	done := make(chan Result, 1)
	x.Submit(t.Context(), limit("other", "o1", book.Buy, 9900, 1), func(r Result) { done <- r })
	release()
	var r Result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("order got no answer")
	}
	if r.Err != nil || r.Order.Status != StatusNew {
		t.Fatalf("other account's order: %+v", r)
	}
	snap := <-sub.C
	if snap.Snapshot == nil || snap.Spec.Symbol != "BTC-USD" {
		t.Fatalf("first update is not the snapshot: %+v", snap)
	}
	u := <-sub.C
	if u.Snapshot != nil || u.Seq != snap.Seq+1 || len(u.Levels) != 1 || u.Levels[0].Price != 9900 {
		t.Fatalf("after one snapshot, the order's level change; got %+v", u)
	}
}

// TestSubscribeSnapshotComesFirst: an update made in the same shard batch just before the
// subscription must not reach the subscriber ahead of its snapshot (the snapshot already has it).
func TestSubscribeSnapshotComesFirst(t *testing.T) {
	x := openTest(t, t.TempDir(), newFakeRisk())
	defer closeTest(t, x)
	addSymbol(t, x, "BTC-USD")
	release := pauseShard(t, x, "BTC-USD")
	defer release()
	done := make(chan Result, 1)
	x.Submit(t.Context(), limit("alice", "a1", book.Buy, 9900, 1), func(r Result) { done <- r })
	// The risk check runs on its own goroutine: wait until the order is queued behind the pause.
	deadline := time.Now().Add(10 * time.Second)
	for queued(x, "BTC-USD") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("order never reached the shard queue")
		}
		time.Sleep(time.Millisecond)
	}
	sub, err := x.Subscribe([]string{"BTC-USD"}, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	release()
	if r := <-done; r.Err != nil {
		t.Fatal(r.Err)
	}
	snap := <-sub.C
	if snap.Snapshot == nil || len(snap.Snapshot.Bids) != 1 {
		t.Fatalf("first update must be the snapshot holding the order: %+v", snap)
	}
	submit(t, x, limit("alice", "a2", book.Buy, 9800, 1))
	if u := <-sub.C; u.Seq != snap.Seq+1 || u.Snapshot != nil {
		t.Fatalf("next update: seq %d after snapshot %d", u.Seq, snap.Seq)
	}
}

// TestClosedSubscriptionsDoNotPileUp: subscribers that leave a quiet market are dropped when the
// next one joins, so opening and closing streams cannot grow a market's list without bound.
func TestClosedSubscriptionsDoNotPileUp(t *testing.T) {
	x := openTest(t, t.TempDir(), newFakeRisk())
	defer closeTest(t, x)
	addSymbol(t, x, "BTC-USD")
	for range 100 {
		sub, err := x.Subscribe([]string{"BTC-USD"}, 10, 4)
		if err != nil {
			t.Fatal(err)
		}
		<-sub.C
		sub.Close()
	}
	m, _ := x.market("BTC-USD")
	n := make(chan int, 1)
	if err := m.shard.enqueue(command{kind: cmdQuery, query: func(*output) { n <- len(m.subs) }}); err != nil {
		t.Fatal(err)
	}
	if got := <-n; got > 1 {
		t.Fatalf("%d subscriptions kept for a market nobody follows", got)
	}
}
