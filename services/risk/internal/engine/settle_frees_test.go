package engine

import (
	"fmt"
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

// After a risk restart the owner's re-sync may restore its open orders while orders it checked with
// the previous incarnation, journaled after the capture, fill: their legs have no reservation and
// the restored ones hold the account's money. The trade happened: it settles, paid from the owner's
// other reservations of the account (dropped whole; the owner's next re-sync restores what the free
// balance covers and reports the rest uncovered), never from reservations of anyone else, and never
// beyond the account's total.
func TestSettlePaysALegWithoutReservationFromTheOwnersReservations(t *testing.T) {
	const lost = 1 << 40
	for _, tc := range []struct {
		name   string
		owned  bool
		sold   int64
		ok     bool
		remain []int64 // bob's reservations after, lots
	}{
		{"the owner's reservation pays", true, 5, true, []int64{4}},
		{"nobody's reservations are not the owner's to take", false, 5, false, []int64{6, 4}},
		{"never beyond the total", true, 11, false, []int64{6, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newFixture(t, Config{})
			fund(t, e, "alice", 1_000_000, 0)
			fund(t, e, "bob", 0, 10)
			for _, q := range []int64{6, 4} {
				c := order("bob", SideSell, 10_000, q)
				if tc.owned {
					c = ownedOrder(t, e, "bob", SideSell, 10_000, q, 1)
				}
				mustAccept(t, e, c)
			}
			buy := mustAccept(t, e, order("alice", SideBuy, 10_000, tc.sold))
			res, err := e.Settle(SettleBatch{Stream: stream1, Through: 1, Items: []SettlementItem{
				tradeItem(1, "alice", "bob", buy, lost, 10_000, tc.sold, SideBuy)}}, nil)
			switch {
			case tc.ok && err != nil:
				t.Fatalf("settle: %v", err)
			case !tc.ok && errs.KindOf(err) != errs.KindFailedPrecondition:
				t.Fatalf("settle: %+v, %v; want FailedPrecondition", res, err)
			case tc.ok && res.Reclaimed != 1:
				t.Fatalf("settle: %+v, want one reservation reclaimed", res)
			}
			bob := view(t, e, "bob")
			var left []int64
			var held int64
			for _, r := range bob.Reservations {
				left = append(left, r.Qty)
				held += r.Amount
			}
			if fmt.Sprint(left) != fmt.Sprint(tc.remain) {
				t.Fatalf("bob's reservations hold %v lots, want %v", left, tc.remain)
			}
			b := balanceOf(bob, "BTC")
			if b.Reserved != held || b.Reserved > b.Total {
				t.Fatalf("bob BTC %+v, his reservations hold %d", b, held)
			}
			if p := positionOf(bob, btcUSD); p.OpenSellQty != sum(tc.remain) {
				t.Fatalf("bob's open sell %d, want %d", p.OpenSellQty, sum(tc.remain))
			}
			mustConsistent(t, e)
		})
	}
}

func sum(v []int64) (s int64) {
	for _, x := range v {
		s += x
	}
	return s
}
