package exchange

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bourse-dev/bourse/services/matching/internal/book"
)

// instantRisk accepts everything at once: the benchmark measures the exchange, not the risk service.
type instantRisk struct{ next atomic.Uint64 }

func (r *instantRisk) Symbol(context.Context, string) (RiskSymbol, error) {
	return RiskSymbol{PriceScale: 2, QtyScale: 3, QuoteScale: 8, TakerFeeRate: "0.001"}, nil
}

func (r *instantRisk) Check(_ context.Context, b CheckBatch) (CheckAnswer, error) {
	out := make([]RiskDecision, len(b.Checks))
	for i := range out {
		out[i] = RiskDecision{Accepted: true, ReservationID: r.next.Add(1)}
	}
	return CheckAnswer{Decisions: out}, nil
}

func (r *instantRisk) Settle(_ context.Context, b SettleBatch) (SettleAnswer, error) {
	return SettleAnswer{Watermark: b.Through}, nil
}

func (r *instantRisk) Sync(context.Context, SyncBatch) (SyncAnswer, error) { return SyncAnswer{}, nil }
func (r *instantRisk) Release(context.Context, []uint64) error             { return nil }

// BenchmarkExchangeSubmit: orders from 64 concurrent clients through claim, batched risk check,
// shard queue, journal and book, answered after the journal is durable; resting, non-crossing.
func BenchmarkExchangeSubmit(b *testing.B) {
	for _, mode := range []struct {
		name   string
		noSync bool
	}{{"fsync", false}, {"no-fsync", true}} {
		b.Run(mode.name, func(b *testing.B) {
			x, err := Open(context.Background(), Config{DataDir: b.TempDir(), Shards: 1, NoSync: mode.noSync, Logger: slog.New(slog.DiscardHandler)}, &instantRisk{})
			if err != nil {
				b.Fatal(err)
			}
			defer x.Close(context.Background())
			if _, err := x.AddSymbol(context.Background(), SpecInput{Symbol: "BTC-USD", TickSize: "0.01", LotSize: "0.001"}); err != nil {
				b.Fatal(err)
			}
			const clients = 64
			var wg sync.WaitGroup
			var seq atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			for c := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					done := make(chan Result, 1)
					for {
						i := seq.Add(1)
						if i > int64(b.N) {
							return
						}
						side, price := book.Buy, 10000-i%500
						if i%2 == 0 {
							side, price = book.Sell, 20000+i%500
						}
						x.Submit(context.Background(), OrderRequest{Account: fmt.Sprintf("a%d", c), Symbol: "BTC-USD", ClientOrderID: fmt.Sprint(i),
							Side: side, Type: TypeLimit, Price: price, Qty: 1}, func(r Result) { done <- r })
						if r := <-done; r.Err != nil {
							b.Error(r.Err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
		})
	}
}

// BenchmarkRecover: opening a data directory whose journal holds b.N commands (no snapshot), which
// is what a restart costs at worst for --snapshot-every=b.N.
func BenchmarkRecover(b *testing.B) {
	dir := b.TempDir()
	x, err := Open(context.Background(), Config{DataDir: dir, Shards: 1, NoSync: true, Logger: slog.New(slog.DiscardHandler)}, &instantRisk{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := x.AddSymbol(context.Background(), SpecInput{Symbol: "BTC-USD", TickSize: "0.01", LotSize: "0.001"}); err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	var failed atomic.Int64
	inflight := make(chan struct{}, 4096) // stays under the shard's queue limit
	for i := range b.N {
		wg.Add(1)
		inflight <- struct{}{}
		side, price := book.Buy, int64(10000-i%500)
		if i%2 == 0 {
			side, price = book.Sell, int64(9800+i%500) // crosses: trades, cancels and rests mixed
		}
		x.Submit(context.Background(), OrderRequest{Account: fmt.Sprintf("a%d", i%50), Symbol: "BTC-USD", ClientOrderID: fmt.Sprint(i),
			Side: side, Type: TypeLimit, Price: price, Qty: int64(1 + i%3)}, func(r Result) {
			if r.Err != nil {
				failed.Add(1)
			}
			<-inflight
			wg.Done()
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		b.Fatalf("%d submits failed", failed.Load())
	}
	if err := x.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	y, err := Open(context.Background(), Config{DataDir: dir, Shards: 1, NoSync: true, Logger: slog.New(slog.DiscardHandler)}, &instantRisk{})
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commands/s")
	y.Close(context.Background())
}
