package exchange

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/bourse-dev/bourse/services/matching/internal/book"
)

// BenchmarkListOrders: one page of an account with n open orders in one symbol, from the start,
// from the middle, and from the middle after the cursor's order closed. Its time is what the shard goroutine is kept from other commands, plus the hop.
func BenchmarkListOrders(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		x, err := Open(context.Background(), Config{DataDir: b.TempDir(), Shards: 1, NoSync: true, Logger: slog.New(slog.DiscardHandler)}, &instantRisk{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := x.AddSymbol(context.Background(), SpecInput{Symbol: "BTC-USD", TickSize: "0.01", LotSize: "0.001"}); err != nil {
			b.Fatal(err)
		}
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := w; i < n; i += 8 {
					done := make(chan Result, 1)
					x.Submit(context.Background(), OrderRequest{Account: "alice", Symbol: "BTC-USD", ClientOrderID: fmt.Sprintf("o%d", i),
						Side: book.Buy, Type: TypeLimit, Price: int64(1000 + i%5000), Qty: 1}, func(r Result) { done <- r })
					if r := <-done; r.Err != nil {
						b.Error(r.Err)
						return
					}
				}
			})
		}
		wg.Wait()
		for _, c := range []struct {
			name  string
			after uint64
		}{{"start", 0}, {"middle", uint64(n / 2)}, {"middle-closed", uint64(n / 2)}} {
			if c.name == "middle-closed" {
				// The cursor's order closed since the last page: the ids after it are probed for the
				// account's next open order (here the very next id), O(page) whatever the position.
				r := make(chan Result, 1)
				x.Cancel(OrderRef{Account: "alice", Symbol: "BTC-USD", OrderID: c.after}, func(res Result) { r <- res })
				if res := <-r; res.Err != nil {
					b.Fatal(res.Err)
				}
			}
			for _, limit := range []int{100, MaxListPage} {
				b.Run(fmt.Sprintf("open=%d/%s/page=%d", n, c.name, limit), func(b *testing.B) {
					b.ReportAllocs()
					q := ListQuery{Account: "alice", Limit: limit}
					if c.after != 0 {
						q.After = ListCursor{Symbol: "BTC-USD", OrderID: c.after}
					}
					for b.Loop() {
						p, err := x.ListOrders(context.Background(), q)
						if want := min(limit, n-int(c.after)); err != nil || len(p.Orders) != want {
							b.Fatalf("%d orders, %v", len(p.Orders), err)
						}
					}
				})
			}
		}
		if err := x.Close(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkListOrdersForgedCursor: the page after a token naming another account's order, in front
// of 100,000 of that account's ids: each call probes its bound of ids and answers a cut page. Its
// time is what a hostile token can cost the shard goroutine per request.
func BenchmarkListOrdersForgedCursor(b *testing.B) {
	x, err := Open(context.Background(), Config{DataDir: b.TempDir(), Shards: 1, NoSync: true, Logger: slog.New(slog.DiscardHandler)}, &instantRisk{})
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close(context.Background())
	if _, err := x.AddSymbol(context.Background(), SpecInput{Symbol: "BTC-USD", TickSize: "0.01", LotSize: "0.001"}); err != nil {
		b.Fatal(err)
	}
	for _, account := range []string{"alice", "bob"} {
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := w; i < 100_000; i += 8 {
					done := make(chan Result, 1)
					x.Submit(context.Background(), OrderRequest{Account: account, Symbol: "BTC-USD", ClientOrderID: fmt.Sprintf("o%d", i),
						Side: book.Buy, Type: TypeLimit, Price: int64(1000 + i%5000), Qty: 1}, func(r Result) { done <- r })
					if r := <-done; r.Err != nil {
						b.Error(r.Err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	for _, limit := range []int{100, MaxListPage} {
		b.Run(fmt.Sprintf("page=%d", limit), func(b *testing.B) {
			b.ReportAllocs()
			q := ListQuery{Account: "alice", Limit: limit, After: ListCursor{Symbol: "BTC-USD", OrderID: 100_001}}
			for b.Loop() {
				p, err := x.ListOrders(context.Background(), q)
				if err != nil || len(p.Orders) != 0 {
					b.Fatalf("%d orders, %v", len(p.Orders), err)
				}
			}
		})
	}
}
