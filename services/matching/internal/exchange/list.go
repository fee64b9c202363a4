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

func (c ListCursor) less(symbol string, id uint64) bool {
	if c.Symbol != symbol {
		return c.Symbol < symbol
	}
	return c.OrderID < id
}

// OrderPage is one page of open orders; More is set when orders past the last one remain.
type OrderPage struct {
	Orders []Order
	More   bool
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
	type answer struct {
		orders []Order
		err    error
	}
	// Buffered for every shard: a shard answering after the caller gave up must not block.
	answers := make(chan answer, len(byShard))
	for sh, ms := range byShard {
		err := sh.enqueue(command{kind: cmdQuery, query: func(out *output) {
			orders := collectOpen(ms, q.Account, q.After, q.Limit+1)
			out.reply(func(Result) { answers <- answer{orders: orders} }, Result{})
		}})
		if err != nil {
			answers <- answer{err: err}
		}
	}
	parts := make([][]Order, 0, len(byShard))
	total := 0
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
	page := OrderPage{Orders: all, More: len(all) > q.Limit}
	if page.More {
		page.Orders = all[:q.Limit:q.Limit]
	}
	return page, nil
}

func compareOrders(a, b Order) int {
	if c := cmp.Compare(a.Symbol, b.Symbol); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// collectOpen runs on the shard goroutine: the first limit open orders of account past after, over
// markets (sorted by symbol). It holds at most limit orders, and its walk is O(limit) when the
// cursor's order is still open (the usual case while a client pages); when that order has closed
// since, the walk of its market starts from the account's first order there.
//
// It relies on the book listing an account's orders in acceptance order, which is id order here:
// ids are handed out in journal order and an order is listed when it first opens, during the
// command that submits it (replay and snapshots keep that order; TestAccountListsInIDOrder).
func collectOpen(markets []*market, account string, after ListCursor, limit int) []Order {
	open := 0
	for _, m := range markets {
		if n, ok := m.accts[account]; ok {
			open += m.book.AccountLen(n)
		}
	}
	if open == 0 {
		return nil
	}
	// Sized once: a page of large records should not be copied while it grows.
	out := make([]Order, 0, min(limit, open))
	for _, m := range markets {
		if len(out) >= limit {
			break
		}
		n, ok := m.accts[account]
		if !ok {
			continue
		}
		seq := m.book.AccountOrders(n)
		if after.Symbol == m.spec.Symbol && after.OrderID != 0 {
			if rest, ok := m.book.AccountOrdersAfter(n, after.OrderID); ok {
				seq = rest
			}
		}
		for info := range seq {
			if !after.less(m.spec.Symbol, info.ID) {
				continue
			}
			o := m.orders[info.ID]
			if o == nil || o.Status.closed() {
				continue // unreachable: every open book order has an open record
			}
			out = append(out, *o)
			if len(out) >= limit {
				break
			}
		}
	}
	return out
}
