package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/testenv"
	"github.com/bourse-dev/bourse/services/risk/internal/engine"
	"github.com/bourse-dev/bourse/services/risk/internal/store"
)

// BenchmarkDurableExecutions settles trades (a buy and a sell execution each) through the engine
// and the store from many goroutines at once: each caller waits for its commit, and the group
// committer shares one transaction (one fsync) among whoever is waiting. fills/s is the figure.
func BenchmarkDurableExecutions(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchDurable(b, filepath.Join(b.TempDir(), "risk.db")) })
	b.Run("postgres", func(b *testing.B) { benchDurable(b, testenv.StartPostgres(b)) })
}

func benchDurable(b *testing.B, url string) {
	ctx := context.Background()
	st, err := store.Open(ctx, url, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	eng, err := engine.New(engine.Config{})
	if err != nil {
		b.Fatal(err)
	}
	persist := func(call func(engine.PersistFunc) error) {
		p := st.NewPersister(ctx)
		if err := call(p.Persist); err != nil {
			b.Fatal(err)
		}
		if err := p.Wait(); err != nil {
			b.Fatal(err)
		}
	}
	persist(func(p engine.PersistFunc) error { return eng.DefineAsset(engine.Asset{ID: "USD", Scale: 8}, p) })
	persist(func(p engine.PersistFunc) error { return eng.DefineAsset(engine.Asset{ID: "BTC", Scale: 8}, p) })
	persist(func(p engine.PersistFunc) error {
		return eng.DefineSymbol(engine.SymbolSpec{ID: "BTC-USD", Base: "BTC", Quote: "USD", PriceScale: 2, QtyScale: 4}, p)
	})
	const pairs = 64
	for i := range pairs {
		buyer, seller := fmt.Sprintf("buyer%d", i), fmt.Sprintf("seller%d", i)
		for _, a := range []string{buyer, seller} {
			persist(func(p engine.PersistFunc) error { return eng.OpenAccount(engine.AccountSpec{ID: a}, p) })
		}
		persist(func(p engine.PersistFunc) error {
			_, err := eng.Credit(engine.Transfer{Account: buyer, Asset: "USD", Amount: 1 << 60, Ref: "usd-" + buyer}, p)
			return err
		})
		persist(func(p engine.PersistFunc) error {
			_, err := eng.Credit(engine.Transfer{Account: seller, Asset: "BTC", Amount: 1 << 60, Ref: "btc-" + seller}, p)
			return err
		})
	}
	var next, pair atomic.Int64
	b.SetParallelism(pairs / 2) // many callers waiting at once is what group commit is for
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		i := pair.Add(1) - 1
		buyer, seller := fmt.Sprintf("buyer%d", i%pairs), fmt.Sprintf("seller%d", i%pairs)
		for pb.Next() {
			now := time.Now().UnixNano()
			buy, r1 := eng.CheckOrder(engine.OrderCheck{Account: buyer, Symbol: "BTC-USD", Side: engine.SideBuy, Type: engine.OrderLimit, Price: 100, Qty: 1, Now: now})
			sell, r2 := eng.CheckOrder(engine.OrderCheck{Account: seller, Symbol: "BTC-USD", Side: engine.SideSell, Type: engine.OrderLimit, Price: 100, Qty: 1, Now: now})
			if r1 != engine.Accepted || r2 != engine.Accepted {
				b.Errorf("rejected: %v %v", r1, r2)
				return
			}
			n := next.Add(1)
			execs := []engine.Execution{
				{ExecID: fmt.Sprintf("b%d", n), ReservationID: buy, Account: buyer, Symbol: "BTC-USD", Side: engine.SideBuy, Price: 100, Qty: 1, Time: now},
				{ExecID: fmt.Sprintf("s%d", n), ReservationID: sell, Account: seller, Symbol: "BTC-USD", Side: engine.SideSell, Price: 100, Qty: 1, Time: now},
			}
			p := st.NewPersister(ctx)
			if _, err := eng.ApplyExecutions(execs, p.Persist); err != nil {
				b.Error(err)
				return
			}
			if err := p.Wait(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(2*b.N)/time.Since(start).Seconds(), "fills/s")
}
