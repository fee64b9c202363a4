package exchange

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/matching/internal/book"
)

type testClock struct{ t atomic.Int64 }

func (c *testClock) now() int64 { return c.t.Add(1000) }

func openTest(t *testing.T, dir string, risk Risk, mutate ...func(*Config)) *Exchange {
	t.Helper()
	clock := &testClock{}
	clock.t.Store(time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC).UnixNano())
	cfg := Config{DataDir: dir, Shards: 2, Now: clock.now, Logger: slog.New(slog.DiscardHandler), SnapshotEvery: 0}
	for _, f := range mutate {
		f(&cfg)
	}
	x, err := Open(context.Background(), cfg, risk)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return x
}

func closeTest(t *testing.T, x *Exchange) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := x.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
}

func addSymbol(t *testing.T, x *Exchange, name string) *Spec {
	t.Helper()
	if _, err := x.AddSymbol(context.Background(), SpecInput{Symbol: name, TickSize: "0.01", LotSize: "0.001"}); err != nil {
		t.Fatalf("add symbol: %v", err)
	}
	spec, err := x.Spec(name)
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func submit(t *testing.T, x *Exchange, req OrderRequest) Result {
	t.Helper()
	done := make(chan Result, 1)
	x.Submit(context.Background(), req, func(r Result) { done <- r })
	select {
	case r := <-done:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("submit: no answer")
		return Result{}
	}
}

func call(t *testing.T, f func(func(Result))) Result {
	t.Helper()
	done := make(chan Result, 1)
	f(func(r Result) { done <- r })
	select {
	case r := <-done:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no answer")
		return Result{}
	}
}

func limit(account, cid string, side book.Side, price, qty int64) OrderRequest {
	return OrderRequest{Account: account, Symbol: "BTC-USD", ClientOrderID: cid, Side: side, Type: TypeLimit, Price: price, Qty: qty}
}

// haltedShards counts shards whose settlement risk refuses.
func haltedShards(x *Exchange) int {
	n := 0
	for _, st := range x.SettlementStatus() {
		if st.Halted {
			n++
		}
	}
	return n
}

// waitSettled waits until the reporters have handed everything to risk.
func waitSettled(t *testing.T, x *Exchange) {
	t.Helper()
	for _, sh := range x.shards {
		if !sh.rep.waitAcked(sh.journal.LastSeq()) {
			t.Fatal("reporter stopped before settling")
		}
	}
}

func TestSubmitMatchSettle(t *testing.T) {
	risk := newFakeRisk()
	x := openTest(t, t.TempDir(), risk)
	defer closeTest(t, x)
	addSymbol(t, x, "BTC-USD")

	sell := submit(t, x, limit("alice", "s1", book.Sell, 10000, 5))
	if sell.Err != nil || sell.Order.Status != StatusNew || sell.Order.ID == 0 {
		t.Fatalf("resting sell: %+v", sell)
	}
	buy := submit(t, x, limit("bob", "b1", book.Buy, 10100, 3))
	if buy.Err != nil || buy.Order.Status != StatusFilled || len(buy.Fills) != 1 {
		t.Fatalf("crossing buy: %+v", buy)
	}
	if f := buy.Fills[0]; f.Price != 10000 || f.Qty != 3 || f.Maker {
		t.Fatalf("fill at the maker's price expected: %+v", f)
	}
	got := call(t, func(d func(Result)) {
		x.GetOrder(OrderRef{Account: "alice", Symbol: "BTC-USD", OrderID: sell.Order.ID}, d)
	})
	if got.Order.Status != StatusPartiallyFilled || got.Order.Filled != 3 || got.Order.Remaining != 2 {
		t.Fatalf("maker after partial fill: %+v", got.Order)
	}
	waitSettled(t, x)
	if b, _ := risk.filledQty("bob"); b != 3 {
		t.Fatalf("risk saw bob buy %d, want 3", b)
	}
	if _, s := risk.filledQty("alice"); s != 3 {
		t.Fatalf("risk saw alice sell %d, want 3", s)
	}
	// bob's order is filled: its reservation was released; alice's still rests.
	if n := risk.openCount(); n != 1 {
		t.Fatalf("open reservations = %d, want 1 (%s)", n, risk)
	}
}

func TestRiskRejectChangesNothing(t *testing.T) {
	risk := newFakeRisk()
	x := openTest(t, t.TempDir(), risk)
	defer closeTest(t, x)
	addSymbol(t, x, "BTC-USD")
	before, _ := x.State()
	r := submit(t, x, limit("broke", "x1", book.Buy, 10000, 1))
	if r.Err != nil || r.Order.Status != StatusRejected || r.Order.Reject != RejectRisk || r.Order.RiskReject != "REJECT_REASON_INSUFFICIENT_FUNDS" {
		t.Fatalf("want risk reject, got %+v", r)
	}
	after, _ := x.State()
	if !bytes.Equal(before, after) {
		t.Fatal("a risk reject changed the state")
	}
	// The client id was not consumed: the same id may be used again.
	risk.mu.Lock()
	risk.rejectAll = false
	risk.mu.Unlock()
	if r := submit(t, x, limit("carol", "x1", book.Buy, 10000, 1)); r.Order.Status != StatusNew {
		t.Fatalf("fresh order: %+v", r)
	}
}

func TestIdempotentClientOrderID(t *testing.T) {
	x := openTest(t, t.TempDir(), newFakeRisk())
	defer closeTest(t, x)
	addSymbol(t, x, "BTC-USD")
	first := submit(t, x, limit("alice", "c1", book.Buy, 9000, 1))
	again := submit(t, x, limit("alice", "c1", book.Buy, 9999, 7))
	if !again.Duplicate || again.Order.ID != first.Order.ID || again.Order.Price != 9000 {
		t.Fatalf("repeat should return the first order: %+v", again)
	}
	other := submit(t, x, limit("bob", "c1", book.Buy, 9000, 1))
	if other.Duplicate || other.Order.ID == first.Order.ID {
		t.Fatalf("client ids are per account: %+v", other)
	}
}

func TestOnlyOwnerCancels(t *testing.T) {
	x := openTest(t, t.TempDir(), newFakeRisk())
	defer closeTest(t, x)
	addSymbol(t, x, "BTC-USD")
	o := submit(t, x, limit("alice", "c1", book.Buy, 9000, 1)).Order
	r := call(t, func(d func(Result)) { x.Cancel(OrderRef{Account: "bob", Symbol: "BTC-USD", OrderID: o.ID}, d) })
	if errs.KindOf(r.Err) != errs.KindNotFound {
		t.Fatalf("bob cancelling alice's order: %v", r.Err)
	}
	r = call(t, func(d func(Result)) { x.Cancel(OrderRef{Account: "alice", Symbol: "BTC-USD", ClientOrderID: "c1"}, d) })
	if r.Err != nil || r.Order.Status != StatusCancelled || r.Order.Cancel != book.CancelUser {
		t.Fatalf("owner cancel: %+v", r)
	}
	r = call(t, func(d func(Result)) { x.Cancel(OrderRef{Account: "alice", Symbol: "BTC-USD", ClientOrderID: "c1"}, d) })
	if errs.KindOf(r.Err) != errs.KindFailedPrecondition {
		t.Fatalf("second cancel: %v", r.Err)
	}
}

func TestAmendRules(t *testing.T) {
	risk := newFakeRisk()
	x := openTest(t, t.TempDir(), risk)
	defer closeTest(t, x)
	addSymbol(t, x, "BTC-USD")
	a := submit(t, x, limit("alice", "a", book.Buy, 9000, 5)).Order
	submit(t, x, limit("bob", "b", book.Buy, 9000, 5))
	checksBefore := risk.next

	// A decrease keeps priority and needs no risk check.
	r := call(t, func(d func(Result)) {
		x.Amend(context.Background(), AmendRequest{OrderRef: OrderRef{Account: "alice", Symbol: "BTC-USD", OrderID: a.ID}, Qty: 4}, d)
	})
	if r.Err != nil || r.Order.Qty != 4 || risk.next != checksBefore {
		t.Fatalf("decrease: %+v (checks %d → %d)", r, checksBefore, risk.next)
	}
	sell := submit(t, x, limit("carol", "s", book.Sell, 9000, 1))
	if len(sell.Fills) != 1 {
		t.Fatalf("sell fills: %+v", sell)
	}
	// alice kept priority: she is filled first.
	if got := call(t, func(d func(Result)) { x.GetOrder(OrderRef{Account: "alice", Symbol: "BTC-USD", OrderID: a.ID}, d) }); got.Order.Filled != 1 {
		t.Fatalf("alice should have kept time priority: %+v", got.Order)
	}
	// An increase needs a new reservation and the old one is released.
	r = call(t, func(d func(Result)) {
		x.Amend(context.Background(), AmendRequest{OrderRef: OrderRef{Account: "alice", Symbol: "BTC-USD", OrderID: a.ID}, Qty: 10}, d)
	})
	if r.Err != nil || r.Order.Qty != 10 || risk.next != checksBefore+2 {
		t.Fatalf("increase: %+v", r)
	}
	waitSettled(t, x)
	risk.mu.Lock()
	_, oldOpen := risk.open[a.reservation]
	risk.mu.Unlock()
	if oldOpen && a.reservation != 0 {
		t.Fatal("the old reservation of an amended order is still open")
	}
	// Refused by risk: the order is unchanged.
	risk.mu.Lock()
	risk.rejectAll = true
	risk.mu.Unlock()
	r = call(t, func(d func(Result)) {
		x.Amend(context.Background(), AmendRequest{OrderRef: OrderRef{Account: "alice", Symbol: "BTC-USD", OrderID: a.ID}, Price: 9500}, d)
	})
	if r.Order.Reject != RejectRisk || r.Order.Price != 9000 {
		t.Fatalf("risk-refused amend: %+v", r)
	}
}

func TestPostOnlyAndFOKRejectedAndReleased(t *testing.T) {
	risk := newFakeRisk()
	x := openTest(t, t.TempDir(), risk)
	defer closeTest(t, x)
	addSymbol(t, x, "BTC-USD")
	submit(t, x, limit("alice", "s", book.Sell, 10000, 2))
	po := limit("bob", "po", book.Buy, 10000, 1)
	po.PostOnly = true
	if r := submit(t, x, po); r.Order.Status != StatusRejected || r.Order.Reject != RejectPostOnlyWouldCross {
		t.Fatalf("post-only crossing: %+v", r)
	}
	fok := limit("bob", "fok", book.Buy, 10000, 3)
	fok.TIF = book.FOK
	if r := submit(t, x, fok); r.Order.Status != StatusRejected || r.Order.Reject != RejectFOKCannotFill || len(r.Fills) != 0 {
		t.Fatalf("unfillable FOK: %+v", r)
	}
	waitSettled(t, x)
	if n := risk.openCount(); n != 1 {
		t.Fatalf("rejected orders must release their reservations: open=%d", n)
	}
}

func TestMarketOrderProtection(t *testing.T) {
	risk := newFakeRisk()
	x := openTest(t, t.TempDir(), risk)
	defer closeTest(t, x)
	addSymbol(t, x, "BTC-USD")
	m := OrderRequest{Account: "bob", Symbol: "BTC-USD", ClientOrderID: "m0", Side: book.Buy, Type: TypeMarket, Qty: 1}
	if r := submit(t, x, m); r.Order.Reject != RejectNoLiquidity {
		t.Fatalf("market order into an empty book: %+v", r)
	}
	submit(t, x, limit("alice", "s1", book.Sell, 10000, 1))
	submit(t, x, limit("alice", "s2", book.Sell, 10400, 1))
	submit(t, x, limit("alice", "s3", book.Sell, 10600, 1)) // beyond 5% of 10000
	m.ClientOrderID, m.Qty = "m1", 3
	r := submit(t, x, m)
	if r.Order.Filled != 2 || r.Order.Status != StatusCancelled || r.Order.Price != 10500 || r.Order.Type != TypeMarket {
		t.Fatalf("protected market order: %+v", r.Order)
	}
}

func TestMarketDataSequence(t *testing.T) {
	x := openTest(t, t.TempDir(), newFakeRisk())
	defer closeTest(t, x)
	addSymbol(t, x, "BTC-USD")
	submit(t, x, limit("alice", "s1", book.Sell, 10000, 5))
	sub, err := x.Subscribe([]string{"BTC-USD"}, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	snap := <-sub.C
	if snap.Snapshot == nil || len(snap.Snapshot.Asks) != 1 || snap.Snapshot.Asks[0].Qty != 5 {
		t.Fatalf("snapshot: %+v", snap)
	}
	submit(t, x, limit("bob", "b1", book.Buy, 10000, 2))
	submit(t, x, limit("bob", "b2", book.Buy, 9900, 1))
	u1, u2 := <-sub.C, <-sub.C
	if u1.Seq != snap.Seq+1 || u2.Seq != u1.Seq+1 {
		t.Fatalf("sequence: snapshot %d then %d, %d", snap.Seq, u1.Seq, u2.Seq)
	}
	if len(u1.Trades) != 1 || u1.Trades[0].Qty != 2 || len(u1.Levels) != 1 || u1.Levels[0].Qty != 3 {
		t.Fatalf("trade delta: %+v", u1)
	}
	if len(u2.Levels) != 1 || u2.Levels[0].Side != book.Buy || u2.Levels[0].Price != 9900 {
		t.Fatalf("new bid level: %+v", u2)
	}
}

// TestReplayEqualsLive runs a mixed workload, reopens the data directory and compares the
// serialized state, with and without snapshots.
func TestReplayEqualsLive(t *testing.T) {
	for _, every := range []int{0, 37} {
		t.Run(fmt.Sprintf("snapshot-every-%d", every), func(t *testing.T) {
			dir := t.TempDir()
			risk := newFakeRisk()
			x := openTest(t, dir, risk, func(c *Config) { c.SnapshotEvery = every; c.Retain = 50 })
			addSymbol(t, x, "BTC-USD")
			addSymbol(t, x, "ETH-USD")
			for i := range 400 {
				sym := "BTC-USD"
				if i%3 == 0 {
					sym = "ETH-USD"
				}
				side := book.Buy
				if i%2 == 1 {
					side = book.Sell
				}
				req := OrderRequest{Account: fmt.Sprintf("acct%d", i%7), Symbol: sym, ClientOrderID: fmt.Sprintf("c%d", i),
					Side: side, Type: TypeLimit, Price: int64(10000 + (i*37)%50 - 25), Qty: int64(1 + i%5)}
				if i%11 == 0 {
					req.TIF = book.IOC
				}
				r := submit(t, x, req)
				if r.Err != nil {
					t.Fatalf("submit %d: %v", i, r.Err)
				}
				if i%5 == 0 && r.Order.ID != 0 && !r.Order.Status.closed() {
					call(t, func(d func(Result)) {
						x.Cancel(OrderRef{Account: req.Account, Symbol: sym, OrderID: r.Order.ID}, d)
					})
				}
			}
			live, err := x.State()
			if err != nil {
				t.Fatal(err)
			}
			closeTest(t, x)
			settled := risk.trades

			y := openTest(t, dir, risk, func(c *Config) { c.SnapshotEvery = every; c.Retain = 50 })
			defer closeTest(t, y)
			replayed, err := y.State()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(live, replayed) {
				t.Fatalf("replayed state differs from the live one (%d vs %d bytes)", len(live), len(replayed))
			}
			waitSettled(t, y)
			if risk.trades != settled || haltedShards(y) != 0 {
				t.Fatalf("replay changed settlements: %d → %d trades, %d shards halted", settled, risk.trades, haltedShards(y))
			}
			if err := risk.conserved(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestBadInputNamesField(t *testing.T) {
	x := openTest(t, t.TempDir(), newFakeRisk())
	defer closeTest(t, x)
	addSymbol(t, x, "BTC-USD")
	cases := map[string]OrderRequest{
		"client_order_id": {Account: "a", Symbol: "BTC-USD", Side: book.Buy, Type: TypeLimit, Price: 1, Qty: 1},
		"side":            {Account: "a", Symbol: "BTC-USD", ClientOrderID: "x", Type: TypeLimit, Price: 1, Qty: 1},
		"price":           {Account: "a", Symbol: "BTC-USD", ClientOrderID: "x", Side: book.Buy, Type: TypeLimit, Qty: 1},
		"trigger_price":   {Account: "a", Symbol: "BTC-USD", ClientOrderID: "x", Side: book.Buy, Type: TypeStopLimit, Price: 1, Qty: 1},
		"post_only":       {Account: "a", Symbol: "BTC-USD", ClientOrderID: "x", Side: book.Buy, Type: TypeLimit, Price: 1, Qty: 1, PostOnly: true, TIF: book.IOC},
		"expire_time":     {Account: "a", Symbol: "BTC-USD", ClientOrderID: "x", Side: book.Buy, Type: TypeLimit, Price: 1, Qty: 1, TIF: book.GTD},
	}
	before, _ := x.State()
	for field, req := range cases {
		r := submit(t, x, req)
		var e *errs.Error
		if r.Err == nil || errs.KindOf(r.Err) != errs.KindInvalidArgument {
			t.Fatalf("%s: want InvalidArgument, got %v", field, r.Err)
		}
		if ok := asErr(r.Err, &e); !ok || e.Field != field {
			t.Fatalf("%s: error names %q", field, e.Field)
		}
	}
	after, _ := x.State()
	if !bytes.Equal(before, after) {
		t.Fatal("bad input changed the state")
	}
	if r := submit(t, x, OrderRequest{Account: "a", Symbol: "NOPE", ClientOrderID: "x"}); errs.KindOf(r.Err) != errs.KindNotFound {
		t.Fatalf("unknown symbol: %v", r.Err)
	}
}
