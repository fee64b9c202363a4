package engine

import (
	"testing"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// After a risk restart a leg whose reservation was lost is paid from the free balance; in journal
// order the release (or shrink) of another of the account's orders may have freed that balance
// first — a cancel whose funds the new order reused. A part carrying both must settle, as it would
// one item at a time, and leave every balance covered; one the frees do not cover is still refused.
func TestSettleCountsTheFreesOfItsPart(t *testing.T) {
	const lost = 1 << 40 // a reservation id the engine does not hold: its order was checked before a restart
	for _, tc := range []struct {
		name    string
		reserve []int64 // bob's sell reservations, lots
		free    func(ids []uint64) SettlementItem
		sold    int64 // lots of bob's unreserved sell in the trade
		ok      bool
	}{
		{"a release funds the fill", []int64{10}, func(ids []uint64) SettlementItem { return SettlementItem{Seq: 1, Release: ids[0]} }, 10, true},
		{"a shrink funds the fill", []int64{10}, func(ids []uint64) SettlementItem {
			return SettlementItem{Seq: 1, Shrink: &Shrink{ReservationID: ids[0], Qty: 4}}
		}, 4, true},
		{"the release does not cover it", []int64{6, 4}, func(ids []uint64) SettlementItem { return SettlementItem{Seq: 1, Release: ids[0]} }, 10, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newFixture(t, Config{})
			fund(t, e, "alice", 1_000_000, 0)
			fund(t, e, "bob", 0, 10)
			var ids []uint64
			for _, q := range tc.reserve {
				ids = append(ids, mustAccept(t, e, order("bob", SideSell, 10_000, q)))
			}
			buy := mustAccept(t, e, order("alice", SideBuy, 10_000, tc.sold))
			items := []SettlementItem{tc.free(ids), tradeItem(2, "alice", "bob", buy, lost, 10_000, tc.sold, SideBuy)}
			res, err := e.Settle(SettleBatch{Stream: stream1, Through: 2, Items: items}, nil)
			if !tc.ok {
				if errs.KindOf(err) != errs.KindFailedPrecondition {
					t.Fatalf("settle: %+v, %v; want FailedPrecondition (bob's free BTC cannot cover the fill)", res, err)
				}
				if b := balanceOf(view(t, e, "bob"), "BTC"); b.Total != 10*btcPerLot || b.Reserved != 10*btcPerLot {
					t.Fatalf("a refused part changed bob's BTC: %+v", b)
				}
				mustConsistent(t, e)
				return
			}
			must(t, err)
			if res.Watermark != 2 || res.Unreserved != 1 {
				t.Fatalf("settle: %+v, want watermark 2 and bob's leg unreserved", res)
			}
			bob := view(t, e, "bob")
			b := balanceOf(bob, "BTC")
			if b.Total != (10-tc.sold)*btcPerLot || b.Reserved > b.Total {
				t.Fatalf("bob BTC %+v after selling %d", b, tc.sold)
			}
			var held int64
			for _, r := range bob.Reservations {
				held += r.Amount
			}
			if held != b.Reserved {
				t.Fatalf("bob reserves %d but his reservations hold %d", b.Reserved, held)
			}
			if got := balanceOf(view(t, e, "alice"), "BTC").Total; got != tc.sold*btcPerLot {
				t.Fatalf("alice BTC %d", got)
			}
			mustConsistent(t, e)
		})
	}
}
