package exchange

import (
	"testing"
	"time"

	"github.com/bourse-dev/bourse/services/matching/internal/book"
)

// A GTD or DAY stop keeps its time in force: it waits for its trigger until it expires, then is
// cancelled with CancelExpired and its reservation released.
func TestStopKeepsTimeInForceAndExpires(t *testing.T) {
	for name, tif := range map[string]book.TimeInForce{"GTD": book.GTD, "DAY": book.DAY} {
		t.Run(name, func(t *testing.T) {
			risk := newFakeRisk()
			now := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
			setClock(now)
			defer testClockNanos.Store(0)
			x := openTest(t, t.TempDir(), risk, func(c *Config) {
				c.Now = func() int64 { return clockNow(nil) }
				c.DayEnd = 11 * time.Hour // DAY orders expire at 11:00 UTC
			})
			defer closeTest(t, x)
			addSymbol(t, x, "BTC-USD")
			req := OrderRequest{Account: "carol", Symbol: "BTC-USD", ClientOrderID: "stop", Side: book.Sell, Type: TypeStop,
				TriggerPrice: 9000, Price: 8900, Qty: 2, TIF: tif}
			if tif == book.GTD {
				req.ExpireAt = now.Add(time.Minute).UnixNano()
			}
			o := submit(t, x, req).Order
			if o.Status != StatusPendingTrigger || o.TIF != tif {
				t.Fatalf("stop: %+v", o)
			}
			setClock(now.Add(2 * time.Hour))
			deadline := time.Now().Add(5 * time.Second)
			for {
				got := call(t, func(d func(Result)) { x.GetOrder(OrderRef{Account: "carol", Symbol: "BTC-USD", OrderID: o.ID}, d) }).Order
				if got.Status == StatusCancelled && got.Cancel == book.CancelExpired && got.TIF == tif {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("stop did not expire: %+v", got)
				}
				time.Sleep(20 * time.Millisecond)
			}
			waitSettled(t, x)
			if n := risk.openCount(); n != 0 {
				t.Fatalf("expired stop kept its reservation: %d open", n)
			}
		})
	}
}

// A triggered GTD stop is still a market order with a protection: it trades to its protection
// price and the rest is cancelled, it does not rest until its expiry.
func TestTriggeredGTDStopDoesNotRest(t *testing.T) {
	x := openTest(t, t.TempDir(), newFakeRisk())
	defer closeTest(t, x)
	addSymbol(t, x, "BTC-USD")
	stop := OrderRequest{Account: "carol", Symbol: "BTC-USD", ClientOrderID: "stop", Side: book.Buy, Type: TypeStop,
		TriggerPrice: 10100, Price: 10300, Qty: 2, TIF: book.GTD, ExpireAt: x.cfg.Now() + int64(time.Hour)}
	if r := submit(t, x, stop); r.Order.Status != StatusPendingTrigger || r.Order.TIF != book.GTD {
		t.Fatalf("stop: %+v", r)
	}
	submit(t, x, limit("alice", "a1", book.Sell, 10100, 1))
	submit(t, x, limit("alice", "a2", book.Sell, 10200, 1))
	submit(t, x, limit("alice", "a3", book.Sell, 10400, 5))
	submit(t, x, limit("bob", "b1", book.Buy, 10100, 1))
	got := call(t, func(d func(Result)) {
		x.GetOrder(OrderRef{Account: "carol", Symbol: "BTC-USD", ClientOrderID: "stop"}, d)
	}).Order
	if got.Filled != 1 || got.Status != StatusCancelled || got.TIF != book.GTD {
		t.Fatalf("triggered GTD stop: %+v", got)
	}
}
