package exchange

import (
	"context"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/services/matching/internal/book"
)

// From the moment the exchange learns that risk restarted until the round's captures are queued,
// SettlementStatus must say the shards are syncing: risk holds none of the resting orders'
// reservations then, and "settled, not syncing" would tell an operator (or a client waiting for
// settlement) that it does. The round is held in its wait for checks in flight by a check held at
// the fake's gate.
func TestStatusSaysSyncingFromTheRequestOfARound(t *testing.T) {
	risk := newFakeRisk()
	x := syncedWithAlice(t, risk)

	gate := make(chan struct{})
	risk.set(func(f *fakeRisk) { f.gate, f.gatePrice = gate, 9100 })
	held := make(chan Result, 1)
	x.Submit(context.Background(), limit("bob", "b1", book.Buy, 9100, 2), func(r Result) { held <- r })
	eventually(t, "bob's check held", func() bool { return risk.gated.Load() == 1 })

	risk.restart()
	x.noteIncarnation(2) // as an answer from the new incarnation would
	for range 20 {
		if synced(x) {
			t.Fatalf("the status says settled while risk (restarted) holds %v and the open orders need %v",
				risk.openQty(), openOrders(t, x))
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(gate)
	if r := <-held; r.Err != nil {
		t.Fatalf("bob's order: %v", r.Err)
	}
	eventually(t, "the re-sync", func() bool {
		return synced(x) && sameReservations(risk.openQty(), openOrders(t, x))
	})
}
