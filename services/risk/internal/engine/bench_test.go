package engine

import (
	"fmt"
	"sync/atomic"
	"testing"
)

// benchEngine is a market with limits switched on, so the benchmarks run every check.
func benchEngine(b *testing.B, accounts int) (*Engine, []string) {
	e := newFixture(b, Config{})
	ids := make([]string, accounts)
	for i := range ids {
		ids[i] = fmt.Sprintf("acct-%d", i)
		fund(b, e, ids[i], 1<<50, 1<<31)
		must(b, e.SetLimits(LimitsChange{Account: ids[i], Limits: Limits{
			MaxPosition: 1 << 40, MaxDailyLoss: 1 << 40, MaxDrawdown: 1 << 40,
			MaxOrderNotional: 1 << 50, PriceBandPPM: 100_000,
		}}, nil))
	}
	return e, ids
}

// BenchmarkCheckOrderAccept: one goroutine, an accepted check and its release per op (steady state).
func BenchmarkCheckOrderAccept(b *testing.B) {
	e, ids := benchEngine(b, 1)
	c := order(ids[0], SideBuy, 10_000, 3)
	b.ReportAllocs()
	for b.Loop() {
		id, r := e.CheckOrder(c)
		if r != Accepted {
			b.Fatal(r)
		}
		if err := e.Release(id); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckOrderParallel: RunParallel over many accounts, check + release per op.
// shared-accounts: every goroutine cycles through all 1024 accounts, so an account's memory is
// usually in another core's cache (the worst case). own-accounts: each goroutine cycles through its
// own 64 accounts, as with routing that keeps an account on one connection.
func BenchmarkCheckOrderParallel(b *testing.B) {
	run := func(b *testing.B, pick func(worker, n int) int) {
		e, ids := benchEngine(b, 1024)
		var workers atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			w := int(workers.Add(1)) - 1
			for n := 0; pb.Next(); n++ {
				c := order(ids[pick(w, n)%len(ids)], Side(1+n%2), 10_000, 1)
				id, r := e.CheckOrder(c)
				if r != Accepted {
					b.Error(r)
					return
				}
				if err := e.Release(id); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.Run("shared-accounts", func(b *testing.B) { run(b, func(w, n int) int { return w*7919 + n }) })
	b.Run("own-accounts", func(b *testing.B) { run(b, func(w, n int) int { return w*64 + n%64 }) })
}

// BenchmarkApplyExecutions: one two-sided fill per op against two large resting reservations, in
// memory (nil persist). Exec ids are prepared before the timer.
func BenchmarkApplyExecutions(b *testing.B) {
	e, ids := benchEngine(b, 2)
	buy := mustAccept(b, e, order(ids[0], SideBuy, 10_000, 1<<30))
	sell := mustAccept(b, e, order(ids[1], SideSell, 10_000, 1<<30))
	batches := make([][]Execution, b.N)
	for i := range batches {
		batches[i] = []Execution{
			{ExecID: fmt.Sprintf("b%d", i), ReservationID: buy, Account: ids[0], Symbol: btcUSD, Side: SideBuy, Price: 10_000, Qty: 1, Fee: 10, Time: t0},
			{ExecID: fmt.Sprintf("s%d", i), ReservationID: sell, Account: ids[1], Symbol: btcUSD, Side: SideSell, Price: 10_000, Qty: 1, Time: t0},
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := e.ApplyExecutions(batches[i], nil); err != nil {
			b.Fatal(err)
		}
	}
}
