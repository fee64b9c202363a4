package exchange

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/matching/internal/book"
)

// boundedOpen is how many open orders alice holds in TestListOrdersBoundsTheWalk: enough that a
// walk from her first order would be hundreds of times the bound. BOURSE_LIST_OPEN raises it.
func boundedOpen(t *testing.T) int {
	if s := os.Getenv("BOURSE_LIST_OPEN"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1000 {
			t.Fatalf("BOURSE_LIST_OPEN=%q: want a number of at least 1000", s)
		}
		return n
	}
	return 100_000
}

// placeMany submits count orders of account in BTC-USD from 8 goroutines, all resting buys, and
// returns their ids (distinct client order ids per run: a repeated one answers the first order).
func placeMany(t *testing.T, x *Exchange, account, run string, count int) []uint64 {
	t.Helper()
	ids := make([]uint64, count)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < count; i += 8 {
				done := make(chan Result, 1)
				x.Submit(context.Background(), OrderRequest{Account: account, Symbol: "BTC-USD", ClientOrderID: fmt.Sprintf("%s-%d", run, i),
					Side: book.Buy, Type: TypeLimit, Price: int64(1000 + i%5000), Qty: 1}, func(r Result) { done <- r })
				r := <-done
				if r.Err != nil || r.Order.Status.closed() {
					t.Errorf("submit: %+v", r)
					return
				}
				ids[i] = r.Order.ID
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return ids
}

// examine runs the shard's part of a listing with the cursor after, as ListOrders does, and
// returns what it did.
func examine(t *testing.T, m *market, account string, after ListCursor, limit int) shardPage {
	t.Helper()
	got := make(chan shardPage, 1)
	if err := m.shard.enqueue(command{kind: cmdQuery, query: func(*output) {
		got <- collectOpen([]*market{m}, account, after, limit+1)
	}}); err != nil {
		t.Fatal(err)
	}
	return <-got
}

// TestListOrdersBoundsTheWalk: a page costs the shard goroutine O(page_size) whatever the page
// token names: a cursor whose order has closed since, one naming another account's order (a
// forged token, or a long run of other accounts' ids after a closed one). Pages following such a
// cursor may be short or empty, and following their tokens still lists every open order after the
// cursor once, in order. Before the bound, such a cursor walked the account's list from its first
// order (about 100,000 entries here per call).
func TestListOrdersBoundsTheWalk(t *testing.T) {
	n := boundedOpen(t)
	x := openTest(t, t.TempDir(), &instantRisk{}, func(c *Config) { c.Shards, c.NoSync = 1, true })
	defer closeTest(t, x)
	addSymbol(t, x, "BTC-USD")
	const pageSize = 250
	budget := listBudget(pageSize + 1)
	// alice's orders, then a run of bob's ids several times the bound, then alice's again.
	first := placeMany(t, x, "alice", "first", n/2)
	gap := placeMany(t, x, "bob", "gap", 3*budget+17)
	second := placeMany(t, x, "alice", "second", n-n/2)
	m, _ := x.market("BTC-USD")

	// The stale cursor: an order in the middle of alice's first run, cancelled since.
	stale := first[n/4]
	if r := call(t, func(d func(Result)) { x.Cancel(OrderRef{Account: "alice", Symbol: "BTC-USD", OrderID: stale}, d) }); r.Err != nil {
		t.Fatal(r.Err)
	}
	open := map[uint64]bool{}
	for _, ids := range [][]uint64{first, second} {
		for _, id := range ids {
			open[id] = id != stale
		}
	}
	for _, c := range []struct {
		name  string
		after uint64
	}{
		{"closed since", stale},
		{"another account's order", gap[len(gap)/2]},
		{"before another account's run", maxID(first)}, // alice's open order: resumes at once
		{"in another account's run", minID(gap)},
	} {
		t.Run(c.name, func(t *testing.T) {
			var want []uint64
			for id, ok := range open {
				if ok && id > c.after {
					want = append(want, id)
				}
			}
			q := ListQuery{Account: "alice", Symbol: "BTC-USD", Limit: pageSize, After: ListCursor{Symbol: "BTC-USD", OrderID: c.after}}
			var got []uint64
			short := 0
			for calls := 0; ; calls++ {
				if calls > n/pageSize+len(gap)/budget+10 {
					t.Fatalf("still paging after %d calls", calls)
				}
				if e := examine(t, m, "alice", q.After, q.Limit); e.examined > budget+q.Limit+1 || e.err != nil {
					t.Fatalf("after %+v the shard examined %d entries (bound %d), %v", q.After, e.examined, budget+q.Limit+1, e.err)
				}
				p, err := x.ListOrders(context.Background(), q)
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range p.Orders {
					if len(got) > 0 && o.ID <= got[len(got)-1] || o.ID <= q.After.OrderID || o.Account != "alice" {
						t.Fatalf("order %d (%s) listed after %d", o.ID, o.Account, q.After.OrderID)
					}
					got = append(got, o.ID)
				}
				if !p.More {
					break
				}
				if len(p.Orders) < pageSize {
					short++
				}
				if !q.After.before(p.Next) {
					t.Fatalf("next position %+v does not advance past %+v", p.Next, q.After)
				}
				q.After = p.Next
			}
			t.Logf("%d orders listed, %d short pages", len(got), short)
			if len(got) != len(want) {
				t.Fatalf("listed %d orders, want %d", len(got), len(want))
			}
			// got is strictly increasing and holds only open orders of alice past the cursor, so
			// equal length means every one of them, once.
			for _, id := range got {
				if !open[id] {
					t.Fatalf("order %d listed, not an open order of alice", id)
				}
			}
			if c.after == minID(gap) && short < 3 {
				t.Fatalf("%d short pages through a run of %d ids of another account with a bound of %d", short, len(gap), budget)
			}
		})
	}
	// A position past the last id the symbol has issued cannot come from a listing.
	_, err := x.ListOrders(context.Background(), ListQuery{Account: "alice", Symbol: "BTC-USD", Limit: 10, After: ListCursor{Symbol: "BTC-USD", OrderID: uint64(n + len(gap) + 1)}})
	var e *errs.Error
	if !asErr(err, &e) || e.Kind != errs.KindInvalidArgument || e.Field != "page_token" {
		t.Fatalf("a cursor past the last id: %v, want InvalidArgument on page_token", err)
	}
}

func minID(ids []uint64) uint64 {
	m := ids[0]
	for _, id := range ids {
		m = min(m, id)
	}
	return m
}

func maxID(ids []uint64) uint64 {
	m := ids[0]
	for _, id := range ids {
		m = max(m, id)
	}
	return m
}

// Without a symbol, a page cut in one shard ends the merged page there: the other shard's orders
// of later symbols wait for the pages after, and every order is listed once, in order.
func TestListOrdersCutAcrossShards(t *testing.T) {
	x := openTest(t, t.TempDir(), &instantRisk{}, func(c *Config) { c.NoSync = true })
	defer closeTest(t, x)
	addSymbol(t, x, "AAA-USD")
	addSymbol(t, x, "BBB-USD")
	a, _ := x.market("AAA-USD")
	b, _ := x.market("BBB-USD")
	if a.shard == b.shard {
		t.Fatal("both symbols on one shard")
	}
	place := func(account, symbol string, i int) Order {
		t.Helper()
		r := submit(t, x, OrderRequest{Account: account, Symbol: symbol, ClientOrderID: fmt.Sprintf("%s-%d", account, i), Side: book.Buy, Type: TypeLimit, Price: 1000, Qty: 1})
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		return r.Order
	}
	var want []Order
	for i := range 5 {
		want = append(want, place("alice", "BBB-USD", i))
	}
	bobFirst := place("bob", "AAA-USD", 0)
	for i := range listBudget(11) + 100 {
		place("bob", "AAA-USD", i+1)
	}
	later := []Order{place("alice", "AAA-USD", 100), place("alice", "AAA-USD", 101)}
	want = append(later, want...)

	q := ListQuery{Account: "alice", Limit: 10, After: ListCursor{Symbol: "AAA-USD", OrderID: bobFirst.ID}}
	var got []Order
	cut := 0
	for calls := 0; ; calls++ {
		if calls > 5 {
			t.Fatal("paging does not end")
		}
		p, err := x.ListOrders(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p.Orders...)
		if !p.More {
			break
		}
		if len(p.Orders) < q.Limit {
			cut++
		}
		q.After = p.Next
	}
	if cut == 0 {
		t.Fatal("no page was cut")
	}
	ids := func(os []Order) string {
		return fmt.Sprint(mapIDs(os, func(o Order) string { return fmt.Sprintf("%s/%d", o.Symbol, o.ID) }))
	}
	if ids(got) != ids(want) {
		t.Fatalf("listed %s, want %s", ids(got), ids(want))
	}
}
