package exchange

import (
	"sync"
	"sync/atomic"

	"github.com/bourse-dev/bourse/services/matching/internal/book"
	"github.com/bourse-dev/bourse/services/matching/internal/journal"
)

// market is one symbol: its book and the orders around it. Everything but the client-id index and
// the published top of book is owned by the shard goroutine.
type market struct {
	spec   Spec
	book   *book.Book
	shard  *shard
	retain int   // closed orders kept for GetOrder and idempotency
	window int64 // nanoseconds a closed order's client id stays taken (0: while its record is kept)
	idCap  int   // client ids of dropped records kept at most

	orders    map[uint64]*Order
	closed    []uint64 // closed order ids, oldest first, from closedHead
	closedHd  int
	accts     map[string]uint32
	acctNames []string // index = account number - 1
	lastID    uint64
	mdSeq     uint64 // market-data sequence: one per published update
	events    []book.Event
	subs      []*Subscription

	// clientIDs maps account + "\x00" + client order id to the order id, 0 while the order is
	// between its risk check and the book. Request goroutines read it to answer repeats.
	mu        sync.Mutex
	clientIDs map[string]uint64
	closedAt  map[uint64]int64 // close time of every closed order whose client id is still taken
	gone      []goneID         // oldest first, from goneHd
	goneHd    int

	bestBid, bestAsk atomic.Int64 // 0 when the side is empty; published after every batch
}

func newMarket(spec Spec, sh *shard, cfg *Config) *market {
	return &market{
		spec: spec, book: book.New(spec.Instrument()), shard: sh, retain: cfg.Retain, window: int64(cfg.IDWindow), idCap: cfg.IDCap,
		orders: map[uint64]*Order{}, accts: map[string]uint32{}, clientIDs: map[string]uint64{}, closedAt: map[uint64]int64{},
	}
}

func clientKey(account, clientOrderID string) string { return account + "\x00" + clientOrderID }

func (m *market) acctNum(name string) uint32 {
	if n, ok := m.accts[name]; ok {
		return n
	}
	m.acctNames = append(m.acctNames, name)
	n := uint32(len(m.acctNames))
	m.accts[name] = n
	return n
}

// lookup finds an order of account by id or client id; another account's order is not found.
func (m *market) lookup(ref OrderRef) *Order {
	id := ref.OrderID
	if id == 0 {
		m.mu.Lock()
		id = m.clientIDs[clientKey(ref.Account, ref.ClientOrderID)]
		m.mu.Unlock()
	}
	o := m.orders[id]
	if o == nil || o.Account != ref.Account {
		return nil
	}
	return o
}

func (m *market) publishTop() {
	bid, _, ok := m.book.BestBid()
	if !ok {
		bid = 0
	}
	ask, _, ok := m.book.BestAsk()
	if !ok {
		ask = 0
	}
	m.bestBid.Store(bid)
	m.bestAsk.Store(ask)
}

// output collects what a batch of commands produced, released only once the batch is durable.
type output struct {
	replies []reply
	md      []mdItem
	fills   []Fill // fills not already in a reply, for StreamOrders subscribers
	// settle holds the batch's trades and releases for risk, in journal order; seq is the journal
	// record being applied, which each item is stamped with.
	settle []SettleItem
	seq    uint64
	// syncAt, when sync is set, is how many settle items precede the batch's re-sync capture.
	sync   *syncCapture
	syncAt int
	replay bool
}

func (out *output) release(id uint64) {
	out.settle = append(out.settle, SettleItem{Seq: out.seq, Release: id})
}

type reply struct {
	done func(Result)
	res  Result
}

func (out *output) reply(done func(Result), res Result) {
	if done != nil && !out.replay {
		out.replies = append(out.replies, reply{done, res})
	}
}

// apply runs one journaled command against the market, live or in replay, and returns the order it
// concerns (nil for Expire and CancelAll) with that order's fills.
func (m *market) apply(c *journal.Command, out *output) (primary *Order, fills []Fill, cancelled int) {
	md := mdItem{market: m}
	switch c.Kind {
	case journal.CommandSubmit:
		no := c.Order
		o := &Order{
			ID: no.ID, ClientOrderID: c.ClientOrderID, Account: c.AccountID, Symbol: m.spec.Symbol,
			Side: no.Side, Type: OrderType(c.ClientType), TIF: no.TIF, Price: no.Price, TriggerPrice: no.TriggerPrice,
			Qty: no.Qty, Remaining: no.Qty, DisplayQty: no.DisplayQty, PostOnly: no.PostOnly, STP: no.STP,
			ExpireAt: no.ExpireAt, Created: c.Timestamp, Updated: c.Timestamp,
			reservation: c.ReservationID, reservePrice: no.Price, acct: no.Account,
		}
		if o.Type == 0 {
			o.Type = TypeLimit
		}
		m.lastID = max(m.lastID, no.ID)
		// Account numbers are handed out in journal order, so replay assigns the same ones.
		m.acctNum(c.AccountID)
		m.orders[o.ID] = o
		m.mu.Lock()
		m.clientIDs[clientKey(o.Account, o.ClientOrderID)] = o.ID
		m.mu.Unlock()
		m.events = m.book.Submit(m.events[:0], no)
		if len(m.events) == 1 && m.events[0].Kind == book.EventRejected {
			o.Reject = rejectFromBook(m.events[0].Reason)
			m.close(o, StatusRejected, out)
			return o, nil, 0
		}
		primary = o
	case journal.CommandCancel:
		m.events = m.book.Cancel(m.events[:0], c.OrderID)
		primary = m.orders[c.OrderID]
	case journal.CommandCancelAll:
		m.events = m.book.CancelAll(m.events[:0], c.Account)
	case journal.CommandAmend:
		o := m.orders[c.Amend.ID]
		var before int64
		if o != nil {
			before = o.Remaining
		}
		m.events = m.book.Amend(m.events[:0], c.Amend)
		// An amend down without a new reservation frees the lots it took off (I2: an order holds
		// exactly what its rest needs). Fills in the same command consume the reservation separately.
		defer func() {
			if o == nil || c.ReservationID != 0 || o.reservation == 0 || o.Status.closed() {
				return
			}
			if n := before - o.Remaining - filledBy(fills); n > 0 {
				out.settle = append(out.settle, SettleItem{Seq: out.seq, Trade: Trade{Spec: &m.spec}, ShrinkID: o.reservation, Shrink: n})
			}
		}()
		if len(m.events) == 1 && m.events[0].Kind == book.EventRejected {
			if c.ReservationID != 0 {
				out.release(c.ReservationID)
				if o != nil && !o.Status.closed() && !out.replay {
					// Risk released the order's reservation in favour of the refused one: a re-sync
					// gives it back (at start, recovery re-syncs anyway).
					m.shard.x.requestResync("an amend the book refused had replaced its order's reservation")
				}
			}
			if o == nil {
				return nil, nil, 0
			}
			cp := *o
			cp.Reject = rejectFromBook(m.events[0].Reason)
			return &cp, nil, 0
		}
		if o != nil {
			if c.Amend.TriggerPrice != 0 {
				o.TriggerPrice = c.Amend.TriggerPrice
			}
			if c.ReservationID != 0 {
				if o.reservation != 0 {
					out.release(o.reservation)
				}
				o.reservation = c.ReservationID
				o.reservePrice = o.Price
				if c.Amend.Price != 0 {
					o.reservePrice = c.Amend.Price
				}
			}
		}
		primary = o
	case journal.CommandExpire:
		m.events = m.book.Expire(m.events[:0], c.Timestamp)
	}
	fills, cancelled = m.process(c.Timestamp, primary, out, &md)
	if !md.empty() {
		m.mdSeq++
		md.seq = m.mdSeq
		out.md = append(out.md, md)
	}
	return primary, fills, cancelled
}

// process applies the book's events to the order records and derives fills, settlements and
// market data. Fills of primary are returned; all others go to out.fills.
func (m *market) process(now int64, primary *Order, out *output, md *mdItem) (fills []Fill, cancelled int) {
	fill := func(o *Order, e *book.Event, maker bool) {
		f := Fill{OrderID: o.ID, ClientOrderID: o.ClientOrderID, Account: o.Account, Symbol: m.spec.Symbol,
			Side: o.Side, Price: e.Price, Qty: e.Qty, Maker: maker, Seq: e.Seq, Time: now}
		if o == primary {
			fills = append(fills, f)
		} else if !out.replay {
			out.fills = append(out.fills, f)
		}
	}
	for i := range m.events {
		e := &m.events[i]
		switch e.Kind {
		case book.EventAccepted:
			if o := m.orders[e.OrderID]; o != nil {
				o.Status = StatusNew
				if o.Type == TypeStop || o.Type == TypeStopLimit {
					o.Status = StatusPendingTrigger
				}
				o.Remaining = e.Remaining
			}
		case book.EventTriggered:
			if o := m.orders[e.OrderID]; o != nil {
				o.Status, o.Updated = StatusNew, now
			}
		case book.EventTrade:
			taker, maker := m.orders[e.OrderID], m.orders[e.MakerID]
			if taker == nil || maker == nil {
				continue // unreachable: every book order has a record
			}
			taker.Filled += e.Qty
			taker.FilledNotional.add(e.Price, e.Qty)
			taker.Remaining = e.Remaining
			maker.Filled += e.Qty
			maker.FilledNotional.add(e.Price, e.Qty)
			maker.Remaining = e.MakerRemaining
			fill(taker, e, false)
			fill(maker, e, true)
			out.settle = append(out.settle, m.trade(taker, maker, e, now, out.seq))
			md.trades = append(md.trades, TradeEvent{Seq: e.Seq, Price: e.Price, Qty: e.Qty, Aggressor: taker.Side, Time: now})
			for _, o := range [2]*Order{maker, taker} {
				o.Updated = now
				if o.Remaining == 0 {
					m.close(o, StatusFilled, out)
				} else {
					o.Status = StatusPartiallyFilled
				}
			}
		case book.EventCancelled:
			o := m.orders[e.OrderID]
			if o == nil {
				continue
			}
			o.Remaining, o.Updated = e.Remaining, now
			if e.Remaining == 0 {
				o.Cancel = e.Reason
				m.close(o, StatusCancelled, out)
				cancelled++
			}
		case book.EventAmended:
			if o := m.orders[e.OrderID]; o != nil {
				o.Price = e.Price
				o.Qty, o.Remaining, o.Updated = e.Qty, e.Remaining, now
			}
		case book.EventLevel:
			md.levels = append(md.levels, LevelEvent{Side: e.Side, Price: e.Price, Qty: e.Qty, Seq: e.Seq})
		}
	}
	return fills, cancelled
}

// close ends an order's life: its reservation is released and it joins the retained closed orders.
func (m *market) close(o *Order, status Status, out *output) {
	if o.Status.closed() {
		return
	}
	o.Status = status
	if o.reservation != 0 {
		out.release(o.reservation)
	}
	m.closed = append(m.closed, o.ID)
	m.mu.Lock()
	m.noteClosed(o)
	for len(m.closed)-m.closedHd > m.retain {
		old := m.orders[m.closed[m.closedHd]]
		m.closedHd++
		if old != nil {
			m.forgetRecord(old)
		}
	}
	m.pruneGone(o.Updated)
	m.mu.Unlock()
	if m.closedHd > 4096 && m.closedHd*2 > len(m.closed) {
		m.closed = append(m.closed[:0], m.closed[m.closedHd:]...)
		m.closedHd = 0
	}
}

// trade is the settlement of one fill: both legs travel, and apply in risk, together.
func (m *market) trade(taker, maker *Order, e *book.Event, now int64, seq uint64) SettleItem {
	t := Trade{Spec: &m.spec, Price: e.Price, Qty: e.Qty, TakerSide: taker.Side, Time: now}
	buyer, seller := taker, maker
	if taker.Side == book.Sell {
		buyer, seller = maker, taker
	}
	t.Buyer = Leg{Account: buyer.Account, ReservationID: buyer.reservation}
	t.Seller = Leg{Account: seller.Account, ReservationID: seller.reservation}
	return SettleItem{Seq: seq, Trade: t}
}

func filledBy(fills []Fill) int64 {
	var n int64
	for _, f := range fills {
		n += f.Qty
	}
	return n
}
