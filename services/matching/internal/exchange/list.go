package exchange

import (
	"cmp"
	"context"
	"slices"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// MaxListPage bounds one ListOrders page: each shard queried copies at most this many orders plus
// one, so a page costs the shard goroutines O(MaxListPage) memory whatever the account holds.
const MaxListPage = 1000

// ListQuery asks for one page of an account's open orders, ordered by (symbol, order id).
type ListQuery struct {
	Account string
	// Symbol, when set, lists that symbol only (one shard).
	Symbol string
	// After is the position of the last order of the previous page; zero for the first page.
	After ListCursor
	// Limit is the page size, 1 to MaxListPage.
	Limit int
}

// ListCursor is a position in the (symbol, order id) order: the page after it starts with the
// first open order past it.
type ListCursor struct {
	Symbol  string
	OrderID uint64
}

// IsZero reports whether c is the start.
func (c ListCursor) IsZero() bool { return c.Symbol == "" && c.OrderID == 0 }

func (c ListCursor) before(d ListCursor) bool { return c.less(d.Symbol, d.OrderID) }

func (c ListCursor) less(symbol string, id uint64) bool {
	if c.Symbol != symbol {
		return c.Symbol < symbol
	}
	return c.OrderID < id
}

// OrderPage is one page of open orders. More is set when the listing goes on past Next, which is
// the last listed order or, on a page cut short by the walk's bound (see collectOpen), the last
// position examined: such a page may hold fewer than Limit orders, or none.
type OrderPage struct {
	Orders []Order
	More   bool
	Next   ListCursor
}

// ListOrders answers a page of the account's open orders. Every shard holding a candidate symbol
// is asked through its queue, like any read, and answers once its current batch is durable (so no
// order is shown that a crash could still undo); each returns at most Limit+1 orders and the pages
// merge. A caller that stops waiting (ctx) gets ctx's error, as GetOrder's caller does.
func (x *Exchange) ListOrders(ctx context.Context, q ListQuery) (OrderPage, error) {
	switch {
	case q.Account == "":
		return OrderPage{}, errs.Invalid("account_id", "is required")
	case q.Limit < 1 || q.Limit > MaxListPage:
		return OrderPage{}, errs.Invalid("page_size", "must be 1 to %d", MaxListPage)
	case q.Symbol != "" && !q.After.IsZero() && q.After.Symbol != q.Symbol:
		return OrderPage{}, errs.Invalid("page_token", "belongs to a listing of another symbol")
	}
	var candidates []*market
	if q.Symbol != "" {
		m, err := x.market(q.Symbol)
		if err != nil {
			return OrderPage{}, err
		}
		candidates = []*market{m}
	} else {
		for sym, m := range *x.markets.Load() {
			if sym >= q.After.Symbol {
				candidates = append(candidates, m)
			}
		}
	}
	// Markets by symbol, grouped by shard: a shard walks its markets in order and stops once it
	// has Limit+1 orders, since every later market's orders sort after those.
	slices.SortFunc(candidates, func(a, b *market) int { return cmp.Compare(a.spec.Symbol, b.spec.Symbol) })
	byShard := map[*shard][]*market{}
	for _, m := range candidates {
		byShard[m.shard] = append(byShard[m.shard], m)
	}
	// Buffered for every shard: a shard answering after the caller gave up must not block.
	answers := make(chan shardPage, len(byShard))
	for sh, ms := range byShard {
		err := sh.enqueue(command{kind: cmdQuery, query: func(out *output) {
			a := collectOpen(ms, q.Account, q.After, q.Limit+1)
			out.reply(func(Result) { answers <- a }, Result{})
		}})
		if err != nil {
			answers <- shardPage{err: err}
		}
	}
	parts := make([][]Order, 0, len(byShard))
	total := 0
	// cut is the least position a shard's walk stopped at: past it, a shard may hold orders it has
	// not looked at, so the page ends there.
	var cut ListCursor
	hasCut := false
	for range byShard {
		select {
		case a := <-answers:
			if a.err != nil {
				return OrderPage{}, a.err
			}
			if len(a.orders) > 0 {
				parts = append(parts, a.orders)
				total += len(a.orders)
			}
			if a.cut && (!hasCut || a.upTo.before(cut)) {
				cut, hasCut = a.upTo, true
			}
		case <-ctx.Done():
			return OrderPage{}, ctx.Err()
		}
	}
	var all []Order
	switch len(parts) {
	case 0:
	case 1:
		all = parts[0] // a shard's answer is in order already
	default:
		all = make([]Order, 0, total)
		for _, p := range parts {
			all = append(all, p...)
		}
		slices.SortFunc(all, compareOrders)
	}
	if hasCut {
		all = all[:cutAt(all, cut)]
	}
	switch {
	case len(all) > q.Limit:
		page := OrderPage{Orders: all[:q.Limit:q.Limit], More: true}
		last := page.Orders[q.Limit-1]
		page.Next = ListCursor{Symbol: last.Symbol, OrderID: last.ID}
		return page, nil
	case hasCut:
		return OrderPage{Orders: all, More: true, Next: cut}, nil
	default:
		return OrderPage{Orders: all}, nil
	}
}

// cutAt returns how many of the sorted orders are at or before c.
func cutAt(orders []Order, c ListCursor) int {
	n, _ := slices.BinarySearchFunc(orders, c, func(o Order, c ListCursor) int {
		if c.less(o.Symbol, o.ID) {
			return 1
		}
		return -1
	})
	return n
}

func compareOrders(a, b Order) int {
	if c := cmp.Compare(a.Symbol, b.Symbol); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// shardPage is one shard's answer to a listing.
type shardPage struct {
	orders []Order
	// cut is set when the walk stopped at its bound: the shard has every open order of the
	// account up to upTo in orders, and has not looked past it.
	cut  bool
	upTo ListCursor
	// examined counts the ids and list entries looked at (the walk's cost; tests bound it).
	examined int
	err      error
}

// listBudget bounds how many ids one shard turn probes for the first open order past a cursor
// whose order is not an open order of the account.
func listBudget(limit int) int { return max(4*limit, 1024) }

// collectOpen runs on the shard goroutine: the first limit open orders of account past after, over
// markets (sorted by symbol). It holds at most limit orders, and its work is O(limit) whatever
// the cursor names, so that no listing holds up the shard's other commands:
//   - while the cursor's order is an open order of the account (the usual case while a client
//     pages), the walk resumes right after it in the account's list;
//   - otherwise (it closed since, it is another account's, or the token was made up) the ids
//     after it are probed one by one in the book, for at most listBudget(limit) ids, until an
//     open order of the account turns up, and the walk resumes there. When the bound is reached
//     first, the answer is cut at the last id probed: the next page starts from there, so a
//     client following the tokens gets through any gap in pages of bounded cost.
//
// A cursor past the last id its symbol has issued is refused: it cannot come from a listing.
//
// It relies on the book listing an account's orders in acceptance order, which is id order here:
// ids are handed out in journal order and an order is listed when it first opens, during the
// command that submits it (replay and snapshots keep that order; TestAccountListsInIDOrder).
func collectOpen(markets []*market, account string, after ListCursor, limit int) shardPage {
	var res shardPage
	open := 0
	for _, m := range markets {
		if m.spec.Symbol == after.Symbol && after.OrderID > m.lastID {
			res.err = errs.Invalid("page_token", "names an order %s has not issued", m.spec.Symbol)
			return res
		}
		if n, ok := m.accts[account]; ok {
			open += m.book.AccountLen(n)
		}
	}
	if open == 0 {
		return res
	}
	// Sized once, on the first order: a page of large records should not be copied while it
	// grows, and a page cut before any order costs nothing.
	size := min(limit, open)
	for _, m := range markets {
		if len(res.orders) >= limit {
			break
		}
		n, ok := m.accts[account]
		if !ok || m.book.AccountLen(n) == 0 {
			continue
		}
		seq := m.book.AccountOrders(n)
		if after.Symbol == m.spec.Symbol && after.OrderID != 0 {
			var found bool
			if seq, found = m.book.AccountOrdersAfter(n, after.OrderID); !found {
				var from uint64
				if from, found = probeOpen(m, n, after.OrderID, listBudget(limit), &res.examined); !found {
					if from == m.lastID {
						continue // none past the cursor in this symbol
					}
					res.cut, res.upTo = true, ListCursor{Symbol: m.spec.Symbol, OrderID: from}
					return res
				}
				// from is an open order of the account: list it, then its successors.
				res.orders = appendOpen(res.orders, size, m, from)
				if seq, _ = m.book.AccountOrdersAfter(n, from); len(res.orders) >= limit {
					break
				}
			}
		}
		for info := range seq {
			res.examined++
			if !after.less(m.spec.Symbol, info.ID) {
				continue // unreachable: the walk starts past the cursor
			}
			if res.orders = appendOpen(res.orders, size, m, info.ID); len(res.orders) >= limit {
				break
			}
		}
	}
	return res
}

// probeOpen looks for the first open order of account n with an id above after, probing at most
// budget ids of m's book. It returns that order's id, or, when none is found, the last id probed
// (m.lastID when the probe reached the end).
func probeOpen(m *market, n uint32, after uint64, budget int, examined *int) (uint64, bool) {
	id := after
	for range budget {
		if id >= m.lastID {
			break
		}
		id++
		*examined++
		if info, ok := m.book.Order(id); ok && info.Account == n {
			return id, true
		}
	}
	return id, false
}

func appendOpen(out []Order, size int, m *market, id uint64) []Order {
	o := m.orders[id]
	if o == nil || o.Status.closed() {
		return out // unreachable: every open book order has an open record
	}
	if out == nil {
		out = make([]Order, 0, size)
	}
	return append(out, *o)
}
