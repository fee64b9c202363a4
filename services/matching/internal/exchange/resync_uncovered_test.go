package exchange

import (
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
