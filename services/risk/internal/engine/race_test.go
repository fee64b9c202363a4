package engine

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// TestConcurrentChecksNeverOverReserve: many goroutines race CheckOrder on one account whose balance
// covers only a few orders; the accepted orders must fit the balance exactly.
func TestConcurrentChecksNeverOverReserve(t *testing.T) {
	e := newFixture(t, Config{})
	const perOrder = 10_000 + 10 // 1 lot at 100.00 plus fee
	const fits = 37
	fund(t, e, "alice", fits*perOrder+perOrder-1, 0)

	var accepted atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 500 {
				c := order("alice", SideBuy, 10_000, 1)
				c.Now += int64(g*1000 + i)
				if _, r := e.CheckOrder(c); r == Accepted {
					accepted.Add(1)
				} else if r != RejectInsufficientFunds {
					t.Errorf("unexpected reject %v", r)
				}
			}
		})
	}
	wg.Wait()
	if n := accepted.Load(); n != fits {
		t.Fatalf("accepted %d orders of %d each against a balance for %d", n, perOrder, fits)
	}
	b := balanceOf(view(t, e, "alice"), "USD")
	if b.Reserved != fits*perOrder || b.Available != perOrder-1 {
		t.Fatalf("balance %+v", b)
	}
}

// TestConcurrentMixedTraffic runs checks, releases, fills, credits, views and limit changes on
// several accounts at once (for the race detector), then checks the books balance.
func TestConcurrentMixedTraffic(t *testing.T) {
	e := newFixture(t, Config{})
	accounts := []string{"a0", "a1", "a2", "a3", "a4", "a5"}
	for _, id := range accounts {
		fund(t, e, id, 100_000_000, 1_000)
	}
	var wg sync.WaitGroup
	var fills, credits atomic.Int64
	for g, id := range accounts {
		wg.Go(func() {
			other := accounts[(g+1)%len(accounts)]
			for i := range 300 {
				buy, r1 := e.CheckOrder(order(id, SideBuy, 10_000, 2))
				sell, r2 := e.CheckOrder(order(other, SideSell, 10_000, 2))
				if r1 != Accepted || r2 != Accepted {
					t.Errorf("rejects %v %v", r1, r2)
					return
				}
				if i%3 == 0 {
					_ = e.Release(buy)
					_ = e.Release(sell)
					continue
				}
				_, err := e.ApplyExecutions([]Execution{
					{ExecID: fmt.Sprintf("%s-%d-b", id, i), ReservationID: buy, Account: id, Symbol: btcUSD, Side: SideBuy, Price: 10_000, Qty: 2, Fee: 20, Time: t0},
					{ExecID: fmt.Sprintf("%s-%d-s", id, i), ReservationID: sell, Account: other, Symbol: btcUSD, Side: SideSell, Price: 10_000, Qty: 2, Time: t0},
				}, nil)
				if err != nil {
					t.Error(err)
					return
				}
				fills.Add(1)
				if i%50 == 0 {
					if _, err := e.Credit(Transfer{Account: id, Asset: "USD", Amount: 1, Ref: fmt.Sprintf("%s-c%d", id, i)}, nil); err == nil {
						credits.Add(1)
					}
					_ = e.SetLimits(LimitsChange{Account: id, Limits: Limits{MaxOrderNotional: 1 << 40}}, nil)
					_, _ = e.Account(other)
				}
			}
		})
	}
	wg.Wait()
	var usd, btc int64
	for _, id := range e.AccountIDs() {
		v := view(t, e, id)
		usd += balanceOf(v, "USD").Total
		btc += balanceOf(v, "BTC").Total
		for _, b := range v.Balances {
			if b.Reserved != 0 {
				t.Fatalf("%s still reserves %+v", id, b)
			}
		}
	}
	if want := int64(len(accounts))*100_000_000 + credits.Load(); usd != want || btc != int64(len(accounts))*1_000*btcPerLot {
		t.Fatalf("books do not balance: usd %d, btc %d", usd, btc)
	}
	if fees := balanceOf(view(t, e, "fees"), "USD").Total; fees != 20*fills.Load() {
		t.Fatalf("fees %d for %d fills", fees, fills.Load())
	}
}

// TestReleaseRacesFill: a cancel and a complete fill of the same reservation race; exactly one of
// them wins and nothing is unlocked twice.
func TestReleaseRacesFill(t *testing.T) {
	e := newFixture(t, Config{})
	fund(t, e, "alice", 100_000_000, 0)
	fund(t, e, "bob", 0, 10_000)
	fills, releases := 0, 0
	for i := range 400 {
		buy := mustAccept(t, e, order("alice", SideBuy, 10_000, 2))
		sell := mustAccept(t, e, order("bob", SideSell, 10_000, 2))
		var relErr, fillErr error
		var wg sync.WaitGroup
		wg.Go(func() { relErr = e.Release(buy) })
		wg.Go(func() {
			_, fillErr = e.ApplyExecutions([]Execution{
				{ExecID: fmt.Sprintf("%d-b", i), ReservationID: buy, Account: "alice", Symbol: btcUSD, Side: SideBuy, Price: 10_000, Qty: 2, Fee: 20, Time: t0},
				{ExecID: fmt.Sprintf("%d-s", i), ReservationID: sell, Account: "bob", Symbol: btcUSD, Side: SideSell, Price: 10_000, Qty: 2, Time: t0},
			}, nil)
		})
		wg.Wait()
		switch {
		case fillErr == nil && relErr != nil:
			fills++
		case fillErr != nil && relErr == nil:
			releases++
			must(t, e.Release(sell))
		default:
			t.Fatalf("round %d: release %v, fill %v", i, relErr, fillErr)
		}
	}
	alice, bob := view(t, e, "alice"), view(t, e, "bob")
	if ba := balanceOf(alice, "USD"); ba.Reserved != 0 || ba.Total != 100_000_000-int64(fills)*20_020 {
		t.Fatalf("alice %+v after %d fills", ba, fills)
	}
	if bb := balanceOf(bob, "BTC"); bb.Reserved != 0 || bb.Total != (10_000-2*int64(fills))*btcPerLot {
		t.Fatalf("bob %+v after %d fills", bb, fills)
	}
	t.Logf("%d fills won, %d releases won", fills, releases)
}
