package exchange

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/matching/internal/book"
)

// listFixture is an exchange with four symbols over two shards, where alice has open orders of
// every kind in every symbol, closed ones (cancelled, filled, rejected) in between, and bob has
// open orders of his own. want is alice's open orders by (symbol, id), kept from the answers to
// her commands, not from any listing.
type listFixture struct {
	x       *Exchange
	symbols []string
	want    []Order
}

func newListFixture(t *testing.T, dir string, mutate ...func(*Config)) *listFixture {
	t.Helper()
	f := &listFixture{x: openTest(t, dir, newFakeRisk(), mutate...), symbols: []string{"AAA-USD", "BBB-USD", "CCC-USD", "DDD-USD"}}
	for _, s := range f.symbols {
		addSymbol(t, f.x, s)
	}
	shards := map[*shard]bool{}
	for _, s := range f.symbols {
		m, _ := f.x.market(s)
		shards[m.shard] = true
	}
	if len(shards) != 2 {
		t.Fatalf("symbols on %d shards, want both", len(shards))
	}
	open := map[string]Order{}
	key := func(o Order) string { return fmt.Sprintf("%s/%d", o.Symbol, o.ID) }
	n := 0
	place := func(account, symbol string, req OrderRequest) Order {
		t.Helper()
		n++
		req.Account, req.Symbol, req.ClientOrderID = account, symbol, fmt.Sprintf("c%d", n)
		r := submit(t, f.x, req)
		if r.Err != nil {
			t.Fatalf("submit %+v: %v", req, r.Err)
		}
		if account == "alice" && !r.Order.Status.closed() {
			open[key(r.Order)] = r.Order
		}
		return r.Order
	}
	for i, s := range f.symbols {
		for j := range 9 + 3*i {
			o := place("alice", s, OrderRequest{Side: book.Buy, Type: TypeLimit, Price: int64(9000 - j), Qty: 2})
			switch j % 4 {
			case 1:
				r := call(t, func(d func(Result)) { f.x.Cancel(OrderRef{Account: "alice", Symbol: s, OrderID: o.ID}, d) })
				if r.Err != nil || r.Order.Status != StatusCancelled {
					t.Fatalf("cancel: %+v", r)
				}
				delete(open, key(o))
			case 2:
				place("bob", s, OrderRequest{Side: book.Buy, Type: TypeLimit, Price: 8000 - int64(j), Qty: 1})
			}
		}
		// A stop waiting for its trigger is open; a post-only order that would cross is rejected.
		place("alice", s, OrderRequest{Side: book.Sell, Type: TypeStopLimit, TriggerPrice: 5000, Price: 4900, Qty: 1})
		place("bob", s, OrderRequest{Side: book.Sell, Type: TypeLimit, Price: 9500, Qty: 3})
		if o := place("alice", s, OrderRequest{Side: book.Buy, Type: TypeLimit, Price: 9600, Qty: 1, PostOnly: true}); o.Status != StatusRejected {
			t.Fatalf("post-only crossing: %v", o.Status)
		}
	}
	// An amend to a new price moves an order to the back of its queue, not of the account's list.
	amended := f.x.mustOpen(t, open, "BBB-USD", 9000)
	r := call(t, func(d func(Result)) {
		f.x.Amend(context.Background(), AmendRequest{OrderRef: OrderRef{Account: "alice", Symbol: "BBB-USD", OrderID: amended.ID}, Price: 8500}, d)
	})
	if r.Err != nil || r.Order.Price != 8500 {
		t.Fatalf("amend: %+v", r)
	}
	open[key(amended)] = r.Order
	// A stop that bob's trade below triggers rests as a limit order, listed where its id sorts.
	stop := place("alice", "AAA-USD", OrderRequest{Side: book.Buy, Type: TypeStopLimit, TriggerPrice: 8990, Price: 8000, Qty: 1})
	// Bob's sell fills alice's best bid in AAA completely and her next one partly: the first closes,
	// the third (the second is cancelled) stays listed with its fill.
	best := f.x.mustOpen(t, open, "AAA-USD", 9000)
	next := f.x.mustOpen(t, open, "AAA-USD", 8998)
	r = submit(t, f.x, OrderRequest{Account: "bob", Symbol: "AAA-USD", ClientOrderID: "hit", Side: book.Sell, Type: TypeLimit, Price: 8998, Qty: 3})
	if r.Err != nil || r.Order.Status != StatusFilled {
		t.Fatalf("bob's sell: %+v", r)
	}
	delete(open, key(best))
	partly := call(t, func(d func(Result)) { f.x.GetOrder(OrderRef{Account: "alice", Symbol: "AAA-USD", OrderID: next.ID}, d) })
	if partly.Order.Status != StatusPartiallyFilled || partly.Order.Filled != 1 {
		t.Fatalf("partly filled order: %+v", partly.Order)
	}
	open[key(next)] = partly.Order
	triggered := call(t, func(d func(Result)) { f.x.GetOrder(OrderRef{Account: "alice", Symbol: "AAA-USD", OrderID: stop.ID}, d) })
	if stop.Status != StatusPendingTrigger || triggered.Order.Status != StatusNew {
		t.Fatalf("stop: %v, then %v after the trade", stop.Status, triggered.Order.Status)
	}
	open[key(stop)] = triggered.Order
	for _, o := range open {
		f.want = append(f.want, o)
	}
	slices.SortFunc(f.want, compareOrders)
	return f
}

func (x *Exchange) mustOpen(t *testing.T, open map[string]Order, symbol string, price int64) Order {
	t.Helper()
	for _, o := range open {
		if o.Symbol == symbol && o.Price == price && o.Type == TypeLimit {
			return o
		}
	}
	t.Fatalf("no open order of alice at %d in %s", price, symbol)
	return Order{}
}

// listAll follows the pages to the end and checks each page's size on the way.
func listAll(t *testing.T, x *Exchange, q ListQuery) []Order {
	t.Helper()
	var all []Order
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("paging does not end")
		}
		p, err := x.ListOrders(context.Background(), q)
		if err != nil {
			t.Fatalf("list %+v: %v", q, err)
		}
		// A page is short only when its walk was cut (a cursor whose order is gone); the fixtures
		// here page with open cursors, so every page but the last is full.
		if len(p.Orders) > q.Limit || p.More && len(p.Orders) != q.Limit {
			t.Fatalf("page of %d with limit %d, more=%v", len(p.Orders), q.Limit, p.More)
		}
		all = append(all, p.Orders...)
		if !p.More {
			return all
		}
		if last := p.Orders[len(p.Orders)-1]; p.Next != (ListCursor{Symbol: last.Symbol, OrderID: last.ID}) {
			t.Fatalf("a full page's next position is %+v, not its last order %s/%d", p.Next, last.Symbol, last.ID)
		}
		q.After = p.Next
	}
}

func sameOrders(t *testing.T, what string, got, want []Order) {
	t.Helper()
	id := func(o Order) string { return fmt.Sprintf("%s/%d", o.Symbol, o.ID) }
	if len(got) != len(want) {
		t.Fatalf("%s: %d orders, want %d\ngot  %v\nwant %v", what, len(got), len(want), mapIDs(got, id), mapIDs(want, id))
	}
	for i := range want {
		g, w := got[i], want[i]
		if id(g) != id(w) || g.Account != "alice" || g.Status != w.Status || g.Filled != w.Filled || g.Remaining != w.Remaining ||
			g.FilledNotional != w.FilledNotional || g.ClientOrderID != w.ClientOrderID {
			t.Fatalf("%s: order %d is %+v, want %+v", what, i, g, w)
		}
	}
}

func mapIDs(os []Order, f func(Order) string) []string {
	out := make([]string, len(os))
	for i, o := range os {
		out[i] = f(o)
	}
	return out
}

func TestListOrdersPagesAcrossShards(t *testing.T) {
	f := newListFixture(t, t.TempDir())
	defer closeTest(t, f.x)
	if len(f.want) < 40 {
		t.Fatalf("fixture has only %d open orders", len(f.want))
	}
	// Every page size gives the same listing; with 1, 7 and 10 pages end inside and at the edges
	// of symbols (each symbol has a different number of open orders).
	for _, limit := range []int{1, 7, 10, len(f.want) - 1, len(f.want), len(f.want) + 1, MaxListPage} {
		sameOrders(t, fmt.Sprintf("limit %d", limit), listAll(t, f.x, ListQuery{Account: "alice", Limit: limit}), f.want)
	}
	// A page boundary exactly at the end: the last full page says More only if an order follows.
	p, err := f.x.ListOrders(context.Background(), ListQuery{Account: "alice", Limit: len(f.want)})
	if err != nil || p.More || len(p.Orders) != len(f.want) {
		t.Fatalf("one exact page: %d orders, more=%v, %v", len(p.Orders), p.More, err)
	}
	for _, sym := range f.symbols {
		var want []Order
		for _, o := range f.want {
			if o.Symbol == sym {
				want = append(want, o)
			}
		}
		sameOrders(t, sym, listAll(t, f.x, ListQuery{Account: "alice", Symbol: sym, Limit: 4}), want)
	}
	// Bob sees only his own; an account with no orders anywhere gets an empty last page.
	for _, o := range listAll(t, f.x, ListQuery{Account: "bob", Limit: 3}) {
		if o.Account != "bob" {
			t.Fatalf("bob's listing holds %+v", o)
		}
	}
	if p, err := f.x.ListOrders(context.Background(), ListQuery{Account: "nobody", Limit: 10}); err != nil || len(p.Orders) != 0 || p.More {
		t.Fatalf("nobody: %+v, %v", p, err)
	}
	// Past the last symbol: nothing, not an error.
	if p, err := f.x.ListOrders(context.Background(), ListQuery{Account: "alice", Limit: 10, After: ListCursor{Symbol: "ZZZ", OrderID: 1}}); err != nil || len(p.Orders) != 0 {
		t.Fatalf("after the end: %+v, %v", p, err)
	}
}

// The listing of a recovered exchange is the live one: the book's account lists are rebuilt in
// the same order by replay.
func TestListOrdersAfterRecovery(t *testing.T) {
	dir := t.TempDir()
	f := newListFixture(t, dir)
	closeTest(t, f.x)
	x := openTest(t, dir, newFakeRisk())
	defer closeTest(t, x)
	sameOrders(t, "after recovery", listAll(t, x, ListQuery{Account: "alice", Limit: 6}), f.want)
	checkAccountListsInIDOrder(t, x)
}

// collectOpen stops a market's walk at the limit and resumes after the cursor's order: both need
// every account's book list in id order, live, after a replay, and after a snapshot.
func TestAccountListsInIDOrder(t *testing.T) {
	dir := t.TempDir()
	snapshots := func(c *Config) { c.SnapshotEvery = 7 }
	f := newListFixture(t, dir, snapshots)
	checkAccountListsInIDOrder(t, f.x)
	waitSettled(t, f.x)
	closeTest(t, f.x)
	x := openTest(t, dir, newFakeRisk(), snapshots)
	defer closeTest(t, x)
	checkAccountListsInIDOrder(t, x)
	sameOrders(t, "after a snapshot", listAll(t, x, ListQuery{Account: "alice", Limit: 5}), f.want)
}

func checkAccountListsInIDOrder(t *testing.T, x *Exchange) {
	t.Helper()
	lists := 0
	for _, sh := range x.shards {
		errc := make(chan error, 1)
		if err := sh.enqueue(command{kind: cmdQuery, query: func(*output) {
			for _, m := range sh.markets {
				for name, n := range m.accts {
					var prev uint64
					for info := range m.book.AccountOrders(n) {
						if info.ID <= prev {
							errc <- fmt.Errorf("%s: %s's orders list %d after %d", m.spec.Symbol, name, info.ID, prev)
							return
						}
						prev = info.ID
					}
					if prev != 0 {
						lists++
					}
				}
			}
			errc <- nil
		}}); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if lists < 8 {
		t.Fatalf("only %d account lists checked", lists)
	}
}

func TestListOrdersRefusals(t *testing.T) {
	x := openTest(t, t.TempDir(), newFakeRisk())
	defer closeTest(t, x)
	addSymbol(t, x, "BTC-USD")
	for _, c := range []struct {
		q     ListQuery
		kind  errs.Kind
		field string
	}{
		{ListQuery{Limit: 10}, errs.KindInvalidArgument, "account_id"},
		{ListQuery{Account: "alice"}, errs.KindInvalidArgument, "page_size"},
		{ListQuery{Account: "alice", Limit: MaxListPage + 1}, errs.KindInvalidArgument, "page_size"},
		{ListQuery{Account: "alice", Limit: 10, Symbol: "BTC-USD", After: ListCursor{Symbol: "ETH-USD", OrderID: 3}}, errs.KindInvalidArgument, "page_token"},
		{ListQuery{Account: "alice", Limit: 10, Symbol: "NOPE"}, errs.KindNotFound, "symbol"},
	} {
		_, err := x.ListOrders(context.Background(), c.q)
		var e *errs.Error
		if !asErr(err, &e) || e.Kind != c.kind || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%+v: %v, want %v naming %s", c.q, err, c.kind, c.field)
		}
	}
}

// A shard answers with the first limit open orders past the cursor, never more.
func TestCollectOpenKeepsSmallest(t *testing.T) {
	x := openTest(t, t.TempDir(), newFakeRisk())
	defer closeTest(t, x)
	addSymbol(t, x, "BTC-USD")
	for i := range 50 {
		submit(t, x, limit("alice", fmt.Sprintf("o%d", i), book.Buy, int64(5000+i), 1))
	}
	m, _ := x.market("BTC-USD")
	got := make(chan []Order, 1)
	if err := m.shard.enqueue(command{kind: cmdQuery, query: func(*output) {
		got <- collectOpen([]*market{m}, "alice", ListCursor{Symbol: "BTC-USD", OrderID: 20}, 8).orders
	}}); err != nil {
		t.Fatal(err)
	}
	orders := <-got
	if len(orders) != 8 {
		t.Fatalf("%d orders, want 8", len(orders))
	}
	for i, o := range orders {
		if o.ID != uint64(21+i) {
			t.Fatalf("order %d has id %d, want %d", i, o.ID, 21+i)
		}
	}
}
