package exchange

import (
	"sync"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/matching/internal/book"
)

// LevelEvent is an L2 change: the level's new visible quantity (0: gone).
type LevelEvent struct {
	Side  book.Side
	Price int64
	Qty   int64
	Seq   uint64 // the book event's sequence number
}

// TradeEvent is a public trade.
type TradeEvent struct {
	Seq       uint64
	Price     int64
	Qty       int64
	Aggressor book.Side
	Time      int64
}

// BookOrder is one resting order in an L3 view.
type BookOrder struct {
	ID        uint64
	Account   string
	Price     int64
	Visible   int64
	Remaining int64
}

// BookView is a consistent picture of one book.
type BookView struct {
	Spec      *Spec
	Seq       uint64 // market-data sequence the view reflects
	BookSeq   uint64 // the book's own event sequence
	Last      int64
	HasLast   bool
	Bids      []book.DepthLevel
	Asks      []book.DepthLevel
	BidOrders []BookOrder
	AskOrders []BookOrder
}

// MarketData is one update of a subscription: a snapshot, or what one command changed. Within a
// symbol, Seq grows by one per update after the snapshot's Seq.
type MarketData struct {
	Spec     *Spec
	Seq      uint64
	Snapshot *BookView
	Levels   []LevelEvent
	Trades   []TradeEvent
}

type mdItem struct {
	market   *market
	seq      uint64
	levels   []LevelEvent
	trades   []TradeEvent
	snapshot *BookView
	only     *Subscription // a snapshot for one new subscriber
}

func (it *mdItem) empty() bool { return len(it.levels) == 0 && len(it.trades) == 0 }

// Subscription receives market data until Close, or until it falls too far behind; then Done is
// closed and Err says why (the client resubscribes and gets a fresh snapshot).
type Subscription struct {
	C    chan MarketData
	done chan struct{}
	once sync.Once
	err  error
}

func newSubscription(buffer int) *Subscription {
	return &Subscription{C: make(chan MarketData, buffer), done: make(chan struct{})}
}

// Done is closed when the subscription ends.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err is why the subscription ended; read it after Done.
func (s *Subscription) Err() error { return s.err }

// Close ends the subscription; shards drop it at their next update.
func (s *Subscription) Close() { s.end(nil) }

func (s *Subscription) end(err error) {
	s.once.Do(func() {
		s.err = err
		close(s.done)
	})
}

func (s *Subscription) ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// send never blocks the shard: a subscriber that cannot keep up is cut off.
func (s *Subscription) send(md MarketData) bool {
	if s.ended() {
		return false
	}
	select {
	case s.C <- md:
		return true
	default:
		s.end(errs.New(errs.KindResourceExhausted, "stream too slow: market data fell %d updates behind; resubscribe for a fresh snapshot", cap(s.C)))
		return false
	}
}

// publish delivers one item; it runs on the shard goroutine after the batch is durable.
func (it *mdItem) publish() {
	m := it.market
	md := MarketData{Spec: &m.spec, Seq: it.seq, Snapshot: it.snapshot, Levels: it.levels, Trades: it.trades}
	if it.only != nil {
		// A subscriber joins the market with its snapshot: items published before it (from
		// commands earlier in the batch) are in the snapshot already.
		if it.only.send(md) {
			m.dropEnded()
			m.subs = append(m.subs, it.only)
		}
		return
	}
	kept := m.subs[:0]
	for _, s := range m.subs {
		if s.send(md) {
			kept = append(kept, s)
		}
	}
	clear(m.subs[len(kept):])
	m.subs = kept
}

// dropEnded forgets subscribers that have left. Publishing drops them too, but a quiet market
// publishes nothing, so each joining subscriber also sweeps: the list stays within twice the
// subscribers that are still there.
func (m *market) dropEnded() {
	kept := m.subs[:0]
	for _, s := range m.subs {
		if !s.ended() {
			kept = append(kept, s)
		}
	}
	clear(m.subs[len(kept):])
	m.subs = kept
}

// Subscribe starts market data for symbols: for each, a snapshot of depth levels, then every
// update. Repeated names count once, and each shard gets one command for all of its symbols, so a
// request takes at most one slot of any shard's queue however many names it carries.
func (x *Exchange) Subscribe(symbols []string, depth, buffer int) (*Subscription, error) {
	if len(symbols) == 0 {
		return nil, errs.Invalid("symbols", "name at least one symbol")
	}
	seen := make(map[string]bool, min(len(symbols), 1024))
	var byShard [][]*market
	var shards []*shard
	n := 0
	for i, s := range symbols {
		if seen[s] {
			continue
		}
		seen[s] = true
		m, err := x.market(s)
		if err != nil {
			return nil, errs.New(errs.KindNotFound, "symbols[%d]: unknown symbol %q", i, s)
		}
		n++
		j := 0
		for j < len(shards) && shards[j] != m.shard {
			j++
		}
		if j == len(shards) {
			shards = append(shards, m.shard)
			byShard = append(byShard, nil)
		}
		byShard[j] = append(byShard[j], m)
	}
	if n > buffer {
		// Every snapshot must fit the buffer, or the subscriber is cut off at once.
		return nil, errs.Invalid("symbols", "at most %d distinct symbols per subscription", buffer)
	}
	sub := newSubscription(buffer)
	for j, sh := range shards {
		ms := byShard[j]
		err := sh.enqueue(command{kind: cmdQuery, query: func(out *output) {
			for _, m := range ms {
				v := m.view(depth, false)
				out.md = append(out.md, mdItem{market: m, seq: v.Seq, snapshot: v, only: sub})
			}
		}})
		if err != nil {
			// Shards that already took the command see an ended subscription and skip it.
			sub.Close()
			return nil, err
		}
	}
	return sub, nil
}

// view builds a BookView of depth levels per side, with L3 orders when asked.
func (m *market) view(depth int, orders bool) *BookView {
	v := &BookView{Spec: &m.spec, Seq: m.mdSeq, BookSeq: m.book.Seq()}
	v.Last, v.HasLast = m.book.LastPrice()
	v.Bids = m.book.AppendDepth(nil, book.Buy, depth)
	v.Asks = m.book.AppendDepth(nil, book.Sell, depth)
	if orders {
		for _, side := range [2]book.Side{book.Buy, book.Sell} {
			var list []BookOrder
			for oi := range m.book.Orders(side) {
				list = append(list, BookOrder{ID: oi.ID, Account: m.acctNames[oi.Account-1], Price: oi.Price, Visible: oi.Visible, Remaining: oi.Remaining})
			}
			if side == book.Buy {
				v.BidOrders = list
			} else {
				v.AskOrders = list
			}
		}
	}
	return v
}

// fillHub routes fills of resting orders to the StreamOrders streams of their accounts.
type fillHub struct {
	mu   sync.RWMutex
	subs map[string]map[*FillStream]struct{}
}

// FillStream receives the fills of the accounts it follows that were not part of a command's answer.
type FillStream struct {
	hub      *fillHub
	C        chan Fill
	done     chan struct{}
	once     sync.Once
	accounts map[string]bool
	closed   bool // guarded by hub.mu
}

func (h *fillHub) open(buffer int) *FillStream {
	return &FillStream{hub: h, C: make(chan Fill, buffer), done: make(chan struct{}), accounts: map[string]bool{}}
}

// Follow adds an account. It is called from one goroutine of the stream only, which may race
// with Close: accounts is written under the hub's lock, and not at all once closed.
func (f *FillStream) Follow(account string) {
	if f.accounts[account] {
		return
	}
	f.hub.mu.Lock()
	defer f.hub.mu.Unlock()
	if f.closed {
		return
	}
	f.accounts[account] = true
	if f.hub.subs == nil {
		f.hub.subs = map[string]map[*FillStream]struct{}{}
	}
	set := f.hub.subs[account]
	if set == nil {
		set = map[*FillStream]struct{}{}
		f.hub.subs[account] = set
	}
	set[f] = struct{}{}
}

// Done is closed when the stream fell behind and was dropped.
func (f *FillStream) Done() <-chan struct{} { return f.done }

// Close stops following every account.
func (f *FillStream) Close() {
	f.hub.mu.Lock()
	f.closed = true
	for a := range f.accounts {
		delete(f.hub.subs[a], f)
		if len(f.hub.subs[a]) == 0 {
			delete(f.hub.subs, a)
		}
	}
	f.hub.mu.Unlock()
	f.once.Do(func() { close(f.done) })
}

func (h *fillHub) publish(fills []Fill) {
	if len(fills) == 0 {
		return
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, f := range fills {
		for s := range h.subs[f.Account] {
			select {
			case s.C <- f:
			default:
				s.once.Do(func() { close(s.done) })
			}
		}
	}
}
