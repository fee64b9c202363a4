package exchange

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/bourse-dev/bourse/services/matching/internal/book"
)

// itemLog records settlement items by shard as a readable line each, in stream order.
type itemLog struct {
	mu    sync.Mutex
	items map[uint32]map[uint64][]string // shard → journal position → items
}

func newItemLog() *itemLog { return &itemLog{items: map[uint32]map[uint64][]string{}} }

func (l *itemLog) add(shard uint32, it SettleItem) {
	if it.liveOnly {
		return // by design not replayed: recovery's re-sync trims that reservation instead
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.items[shard] == nil {
		l.items[shard] = map[uint64][]string{}
	}
	var s string
	switch {
	case it.Release != 0:
		s = fmt.Sprintf("release %d", it.Release)
	case it.ShrinkID != 0:
		s = fmt.Sprintf("shrink %d by %d", it.ShrinkID, it.Shrink)
	default:
		t := it.Trade
		s = fmt.Sprintf("trade %s %d@%d taker %v buyer %s/%d seller %s/%d at %d", t.Spec.Symbol, t.Qty, t.Price, t.TakerSide,
			t.Buyer.Account, t.Buyer.ReservationID, t.Seller.Account, t.Seller.ReservationID, t.Time)
	}
	l.items[shard][it.Seq] = append(l.items[shard][it.Seq], s)
}

// recordingRisk is the fake risk, recording each item it applies.
type recordingRisk struct {
	*fakeRisk
	log *itemLog
}

func (r *recordingRisk) Settle(ctx context.Context, b SettleBatch) (SettleAnswer, error) {
	r.fakeRisk.mu.Lock()
	wm := r.fakeRisk.watermarks[b.Stream]
	r.fakeRisk.mu.Unlock()
	ans, err := r.fakeRisk.Settle(ctx, b)
	if err == nil {
		for _, it := range b.Items {
			if it.Seq > wm {
				r.log.add(b.Stream.Shard, it)
			}
		}
	}
	return ans, err
}

// replayRisk answers as a risk that has settled nothing, so recovery sends every item it has, and
// records them.
type replayRisk struct {
	*fakeRisk
	log *itemLog
}

func (r *replayRisk) Settle(_ context.Context, b SettleBatch) (SettleAnswer, error) {
	for _, it := range b.Items {
		r.log.add(b.Stream.Shard, it)
	}
	return SettleAnswer{Watermark: b.Through, Incarnation: 1}, nil
}

func (r *replayRisk) Sync(context.Context, SyncBatch) (SyncAnswer, error) {
	return SyncAnswer{Incarnation: 1}, nil
}

// Recovery must settle exactly what the live process settled: a restart replays the journal from
// the last snapshot, and risk skips every position it already has, so a replay that produced other
// trades or releases for a position than the live run did would leave risk's positions and
// reservations off from matching's for good, with nothing halted. Several clients race limit,
// IOC and market orders, amends and cancels (with snapshots in between); the items a recovery
// produces must equal the live ones position by position.
func TestRecoverySettlesWhatTheLiveRunSettled(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed-", seed), func(t *testing.T) {
			dir := t.TempDir()
			live := newItemLog()
			risk := &recordingRisk{fakeRisk: newFakeRisk(), log: live}
			cfg := func(c *Config) { c.SnapshotEvery = 100; c.Retain = 50 }
			compared := 0
			for cycle := range 4 {
				x := openTest(t, dir, risk, cfg)
				if cycle == 0 {
					addSymbol(t, x, "BTC-USD")
					addSymbol(t, x, "ETH-USD")
				}
				var wg sync.WaitGroup
				for w := range 4 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						raceClient(x, rand.New(rand.NewPCG(seed, uint64(cycle*10+w))), fmt.Sprintf("c%d-w%d", cycle, w), 100)
					}()
				}
				wg.Wait()
				closeTest(t, x)

				replayed := newItemLog()
				y := openTest(t, dir, &replayRisk{fakeRisk: newFakeRisk(), log: replayed}, cfg)
				eventually(t, "the recovery settled", func() bool { return synced(y) })
				closeTest(t, y)
				for shard, bySeq := range replayed.items {
					for seq, got := range bySeq {
						want := live.items[shard][seq]
						if fmt.Sprint(got) != fmt.Sprint(want) {
							t.Errorf("cycle %d shard %d position %d: recovery settles %q, the live run settled %q", cycle, shard, seq, got, want)
						}
						compared++
					}
				}
			}
			if compared < 50 {
				t.Fatalf("only %d positions replayed: the workload did not trade across snapshots", compared)
			}
			t.Logf("%d positions compared", compared)
		})
	}
}

// raceClient sends n random commands from one client: limit, IOC and market orders near a mid of
// 100.00, amends of its own open orders (size and price) and cancels.
func raceClient(x *Exchange, rng *rand.Rand, w string, n int) {
	var open []OrderRef
	for i := range n {
		sym := []string{"BTC-USD", "ETH-USD"}[rng.IntN(2)]
		acct := fmt.Sprintf("acct%d", rng.IntN(5))
		side := []book.Side{book.Buy, book.Sell}[rng.IntN(2)]
		res := make(chan Result, 1)
		done := func(r Result) { res <- r }
		switch k := rng.IntN(10); {
		case k < 6:
			req := OrderRequest{Account: acct, Symbol: sym, ClientOrderID: fmt.Sprintf("%s-%d", w, i), Side: side, Type: TypeLimit,
				Price: int64(9996 + rng.IntN(9)), Qty: int64(1 + rng.IntN(5))}
			if k == 5 {
				req.TIF = book.IOC
			}
			x.Submit(context.Background(), req, done)
		case k < 7:
			x.Submit(context.Background(), OrderRequest{Account: acct, Symbol: sym, ClientOrderID: fmt.Sprintf("%s-%d", w, i), Side: side,
				Type: TypeMarket, Qty: int64(1 + rng.IntN(8))}, done)
		case k < 9 && len(open) > 0:
			o := open[rng.IntN(len(open))]
			x.Amend(context.Background(), AmendRequest{OrderRef: o, Price: int64(9996 + rng.IntN(9)), Qty: int64(1 + rng.IntN(6))}, done)
		case len(open) > 0:
			j := rng.IntN(len(open))
			x.Cancel(open[j], done)
			open = append(open[:j], open[j+1:]...)
		default:
			continue
		}
		r := <-res
		if r.Err == nil && r.Order.ID != 0 && !r.Order.Status.closed() && len(open) < 20 && !slices.Contains(open, OrderRef{Account: r.Order.Account, Symbol: r.Order.Symbol, OrderID: r.Order.ID}) {
			open = append(open, OrderRef{Account: r.Order.Account, Symbol: r.Order.Symbol, OrderID: r.Order.ID})
		}
	}
}
