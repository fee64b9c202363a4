package exchange

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/matching/internal/book"
)

// TestClientOrderIDWindow: a closed order's client_order_id stays taken for the id window, even
// after more closed orders than Retain pushed its record out (it used to be free again then), across
// a restart; after the window a new order with it is accepted; the kept ids stay within the cap.
func TestClientOrderIDWindow(t *testing.T) {
	for _, every := range []int{0, 1} {
		t.Run(fmt.Sprintf("snapshot-every-%d", every), func(t *testing.T) {
			var clock atomic.Int64
			clock.Store(time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC).UnixNano())
			cfg := func(c *Config) {
				c.Retain, c.IDWindow, c.IDCap, c.SnapshotEvery = 2, time.Minute, 5, every
				c.Now = func() int64 { return clock.Add(1000) }
			}
			dir := t.TempDir()
			risk := newFakeRisk()
			x := openTest(t, dir, risk, cfg)
			addSymbol(t, x, "BTC-USD")
			closeOne := func(x *Exchange, cid string) uint64 {
				t.Helper()
				r := submit(t, x, limit("alice", cid, book.Buy, 9000, 1))
				if r.Err != nil || r.Duplicate {
					t.Fatalf("submit %s: %+v", cid, r)
				}
				c := call(t, func(d func(Result)) { x.Cancel(OrderRef{Account: "alice", Symbol: "BTC-USD", OrderID: r.Order.ID}, d) })
				if c.Err != nil {
					t.Fatalf("cancel %s: %v", cid, c.Err)
				}
				return r.Order.ID
			}
			first := closeOne(x, "a1")
			if r := submit(t, x, limit("alice", "a1", book.Buy, 9000, 1)); !r.Duplicate || r.Order.ID != first {
				t.Fatalf("retry within the window, record kept: %+v", r)
			}
			for i := range 3 {
				closeOne(x, fmt.Sprintf("b%d", i))
			}
			taken := func(x *Exchange, when string) {
				t.Helper()
				r := submit(t, x, limit("alice", "a1", book.Buy, 9000, 1))
				if errs.KindOf(r.Err) != errs.KindAlreadyExists {
					t.Fatalf("%s: retry within the window after its record was dropped: want AlreadyExists, got %+v", when, r)
				}
			}
			taken(x, "live")
			closeTest(t, x)
			x = openTest(t, dir, risk, cfg)
			defer func() { closeTest(t, x) }()
			taken(x, "after restart")

			for i := range 20 {
				closeOne(x, fmt.Sprintf("c%d", i))
			}
			m, _ := x.market("BTC-USD")
			m.mu.Lock()
			kept, ids, times := len(m.gone)-m.goneHd, len(m.clientIDs), len(m.closedAt)
			m.mu.Unlock()
			if kept > 5 || ids > 2+5 || times > 2+5 {
				t.Fatalf("ids kept past the records: %d (cap 5), client ids %d, close times %d (want ≤ 7)", kept, ids, times)
			}

			// a1 fell out under the cap; b0 is the id we now age out by the clock.
			b := submit(t, x, limit("alice", "c19", book.Buy, 9000, 1))
			if !b.Duplicate {
				t.Fatalf("retry of the newest closed order within the window: %+v", b)
			}
			clock.Add(int64(time.Minute))
			r := submit(t, x, limit("alice", "c19", book.Buy, 9000, 1))
			if r.Err != nil || r.Duplicate || r.Order.ID == b.Order.ID || r.Order.Status != StatusNew {
				t.Fatalf("after the window the id is free: want a new order, got %+v", r)
			}
			g := call(t, func(d func(Result)) {
				x.GetOrder(OrderRef{Account: "alice", Symbol: "BTC-USD", ClientOrderID: "c19"}, d)
			})
			if g.Err != nil || g.Order.ID != r.Order.ID {
				t.Fatalf("GetOrder by client id finds the new order: %+v", g)
			}
		})
	}
}
