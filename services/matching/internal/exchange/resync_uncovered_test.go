package exchange

import (
	"slices"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/services/matching/internal/book"
)

// A re-sync that risk answers with uncovered reservations (the account can no longer pay for its
// resting order) leaves those orders open until their cancels are journaled. Until then the shard
// must say it is syncing: "settled, not syncing" with an open order risk holds nothing for would
// tell a caller waiting for settlement that risk and the book agree. So from the request of the
// round until the end, the status goes from syncing to settled once, never back.
func TestStatusSaysSyncingUntilUncoveredOrdersAreCancelled(t *testing.T) {
	risk := newFakeRisk()
	x := syncedWith(t, risk, []OrderRequest{
		limit("alice", "a1", book.Buy, 9000, 3),
		limit("tight", "t1", book.Buy, 10000, 5),
	})

	risk.restart()
	risk.set(func(f *fakeRisk) { f.balances["tight"].quote = 0 }) // the new incarnation covers nothing of tight's
	x.noteIncarnation(2)                                          // as an answer from the new incarnation would

	watch := watchSettled(t, x, 100*time.Microsecond)
	eventually(t, "the re-sync and tight's order cancelled", func() bool {
		return synced(x) && sameReservations(risk.openQty(), openOrders(t, x)) && len(openOrders(t, x)) == 1
	})
	time.Sleep(200 * time.Millisecond)
	if watch.syncingAgain() {
		t.Fatal("the status said settled, not syncing, while an order risk could not cover was still open, then unsettled again")
	}
}

// The cancels of uncovered orders wait for room in a full shard queue instead of being dropped:
// an order risk holds nothing for must not stay on the book because the shard was busy when risk
// answered the re-sync.
func TestUncoveredOrdersAreCancelledThroughAFullQueue(t *testing.T) {
	risk := newFakeRisk()
	x := syncedWith(t, risk, []OrderRequest{
		limit("alice", "a1", book.Buy, 9000, 3),
		limit("tight", "t1", book.Buy, 10000, 5),
	}, func(c *Config) { c.QueueLimit = 8 })
	var tight uint64
	for id, qty := range openOrders(t, x) {
		if qty == 5 {
			tight = id
		}
	}
	m := (*x.markets.Load())["BTC-USD"]
	shard := uint32(slices.Index(x.shards, m.shard))

	// The shard is held on a command and its queue filled behind it.
	held, gate := make(chan struct{}), make(chan struct{})
	if err := m.shard.enqueue(command{kind: cmdQuery, query: func(*output) { close(held); <-gate }}); err != nil {
		t.Fatal(err)
	}
	<-held
	for m.shard.enqueue(command{kind: cmdQuery, query: func(*output) {}}) == nil {
	}
	x.cancelUncovered(shard, []uint64{tight}) // as the reporter does on risk's answer to a re-sync
	time.Sleep(50 * time.Millisecond)
	close(gate)

	eventually(t, "the shard's queue drained and its status settled", func() bool {
		m.shard.mu.Lock()
		queued := len(m.shard.queue)
		m.shard.mu.Unlock()
		return queued == 0 && synced(x)
	})
	if _, open := openOrders(t, x)[tight]; open || len(openOrders(t, x)) != 1 {
		t.Fatalf("open orders %v, want alice's alone: tight's order rests with nothing reserved in risk", openOrders(t, x))
	}
}
