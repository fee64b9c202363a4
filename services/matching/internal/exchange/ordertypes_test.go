package exchange

import (
	"testing"
	"time"

	"github.com/bourse-dev/bourse/services/matching/internal/book"
)

// A GTD order expires on the shard's timer: it is cancelled with CancelExpired, leaves the book
// and its reservation is released.
func TestGTDExpiresAndReleases(t *testing.T) {
	risk := newFakeRisk()
	now := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	setClock(now)
	defer testClockNanos.Store(0)
	x := openTest(t, t.TempDir(), risk, func(c *Config) { c.Now = func() int64 { return clockNow(nil) } })
	defer closeTest(t, x)
	addSymbol(t, x, "BTC-USD")
	req := limit("alice", "gtd", book.Buy, 9000, 1)
	req.TIF, req.ExpireAt = book.GTD, now.Add(time.Second).UnixNano()
	o := submit(t, x, req).Order
	if o.Status != StatusNew {
		t.Fatalf("GTD order: %+v", o)
	}
	setClock(now.Add(2 * time.Second))
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := call(t, func(d func(Result)) { x.GetOrder(OrderRef{Account: "alice", Symbol: "BTC-USD", OrderID: o.ID}, d) }).Order
		if got.Status == StatusCancelled && got.Cancel == book.CancelExpired {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not expired: %+v", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitSettled(t, x)
	if n := risk.openCount(); n != 0 {
		t.Fatalf("expired order kept its reservation: %d open", n)
	}
}

// A stop order rests until a trade reaches its trigger, then executes up to its protection price.
func TestStopTriggersOnLastTrade(t *testing.T) {
	x := openTest(t, t.TempDir(), newFakeRisk())
	defer closeTest(t, x)
	addSymbol(t, x, "BTC-USD")
	stop := OrderRequest{Account: "carol", Symbol: "BTC-USD", ClientOrderID: "stop", Side: book.Buy, Type: TypeStop, TriggerPrice: 10100, Price: 10300, Qty: 2}
	if r := submit(t, x, stop); r.Order.Status != StatusPendingTrigger {
		t.Fatalf("stop: %+v", r)
	}
	submit(t, x, limit("alice", "a1", book.Sell, 10100, 1))
	submit(t, x, limit("alice", "a2", book.Sell, 10200, 1))
	submit(t, x, limit("alice", "a3", book.Sell, 10400, 5)) // beyond the stop's protection
	// A trade at 10100 triggers the stop, which buys 10200 and stops before 10400.
	submit(t, x, limit("bob", "b1", book.Buy, 10100, 1))
	got := call(t, func(d func(Result)) {
		x.GetOrder(OrderRef{Account: "carol", Symbol: "BTC-USD", ClientOrderID: "stop"}, d)
	}).Order
	if got.Filled != 1 || got.Status != StatusCancelled || got.Type != TypeStop {
		t.Fatalf("triggered stop: %+v", got)
	}
}

// An iceberg shows only its display quantity in L2.
func TestIcebergShowsDisplayQuantity(t *testing.T) {
	x := openTest(t, t.TempDir(), newFakeRisk())
	defer closeTest(t, x)
	addSymbol(t, x, "BTC-USD")
	ice := limit("alice", "ice", book.Sell, 10000, 10)
	ice.DisplayQty = 2
	submit(t, x, ice)
	v := make(chan *BookView, 1)
	x.Book("BTC-USD", 5, false, func(b *BookView, _ error) { v <- b })
	if b := <-v; len(b.Asks) != 1 || b.Asks[0].Qty != 2 {
		t.Fatalf("iceberg L2: %+v", b.Asks)
	}
	r := submit(t, x, limit("bob", "b", book.Buy, 10000, 5))
	if r.Order.Filled != 5 {
		t.Fatalf("hidden quantity must trade: %+v", r.Order)
	}
}

// Cancel-all reaches every symbol of the account and nobody else's orders.
func TestCancelAllAcrossSymbols(t *testing.T) {
	x := openTest(t, t.TempDir(), newFakeRisk())
	defer closeTest(t, x)
	addSymbol(t, x, "BTC-USD")
	addSymbol(t, x, "ETH-USD")
	submit(t, x, limit("alice", "1", book.Buy, 9000, 1))
	eth := limit("alice", "2", book.Buy, 9000, 1)
	eth.Symbol = "ETH-USD"
	submit(t, x, eth)
	submit(t, x, limit("bob", "3", book.Buy, 9000, 1))
	r := call(t, func(d func(Result)) { x.CancelAll("alice", "", d) })
	if r.Err != nil || r.Cancelled != 2 {
		t.Fatalf("cancel all: %+v", r)
	}
	if got := call(t, func(d func(Result)) { x.GetOrder(OrderRef{Account: "bob", Symbol: "BTC-USD", ClientOrderID: "3"}, d) }); got.Order.Status != StatusNew {
		t.Fatalf("bob's order: %+v", got.Order)
	}
}

// A resting order's fills reach the fill streams that follow its account; the taker's own fills
// come with its answer instead.
func TestMakerFillsReachFollowers(t *testing.T) {
	x := openTest(t, t.TempDir(), newFakeRisk())
	defer closeTest(t, x)
	addSymbol(t, x, "BTC-USD")
	fs := x.FollowFills(16)
	defer fs.Close()
	fs.Follow("alice")
	submit(t, x, limit("alice", "rest", book.Sell, 10000, 3))
	r := submit(t, x, limit("bob", "take", book.Buy, 10000, 2))
	if len(r.Fills) != 1 || r.Fills[0].Maker {
		t.Fatalf("taker fills: %+v", r.Fills)
	}
	select {
	case f := <-fs.C:
		if f.Account != "alice" || !f.Maker || f.Qty != 2 || f.ClientOrderID != "rest" {
			t.Fatalf("maker fill: %+v", f)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no maker fill for the follower")
	}
	select {
	case f := <-fs.C:
		t.Fatalf("unexpected fill: %+v", f)
	default:
	}
}
