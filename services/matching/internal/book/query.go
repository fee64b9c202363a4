package book

import "iter"

// BestBid returns the highest bid price and its visible quantity.
func (b *Book) BestBid() (price, qty int64, ok bool) { return b.best(Buy) }

// BestAsk returns the lowest ask price and its visible quantity.
func (b *Book) BestAsk() (price, qty int64, ok bool) { return b.best(Sell) }

func (b *Book) best(side Side) (price, qty int64, ok bool) {
	lr := b.side(side).index.best()
	if lr == 0 {
		return 0, 0, false
	}
	l := &b.levels[lr]
	return l.price, l.visible, true
}

// AppendDepth appends up to n levels of side, best first, to dst and
// returns the extended slice. It does not allocate when dst has room.
func (b *Book) AppendDepth(dst []DepthLevel, side Side, n int) []DepthLevel {
	if !side.valid() {
		return dst
	}
	s := b.side(side)
	for lr := s.index.best(); lr != 0 && n > 0; n-- {
		l := &b.levels[lr]
		dst = append(dst, DepthLevel{Price: l.price, Qty: l.visible, Orders: int(l.count)})
		lr = s.index.next(s.key(l.price))
	}
	return dst
}

// Orders iterates the resting orders of side in priority order: best
// price first, then time priority within a price (L3).
func (b *Book) Orders(side Side) iter.Seq[OrderInfo] { return b.walk(side, false) }

// StopOrders iterates the stop orders of side that wait for their
// trigger, in the order they would trigger.
func (b *Book) StopOrders(side Side) iter.Seq[OrderInfo] { return b.walk(side, true) }

func (b *Book) walk(side Side, stops bool) iter.Seq[OrderInfo] {
	return func(yield func(OrderInfo) bool) {
		if !side.valid() {
			return
		}
		for r := range b.queue(side, stops) {
			if !yield(b.orders[r].info()) {
				return
			}
		}
	}
}

// queue yields the order references of one side in priority order.
func (b *Book) queue(side Side, stops bool) iter.Seq[orderRef] {
	s := b.side(side)
	if stops {
		s = b.stopSide(side)
	}
	return func(yield func(orderRef) bool) {
		for lr := s.index.best(); lr != 0; {
			l := &b.levels[lr]
			for r := l.head; r != 0; r = b.orders[r].next {
				if !yield(r) {
					return
				}
			}
			lr = s.index.next(s.key(l.price))
		}
	}
}

// Order returns the open order with the given id.
func (b *Book) Order(id uint64) (OrderInfo, bool) {
	r := b.ids.get(id)
	if r == 0 {
		return OrderInfo{}, false
	}
	return b.orders[r].info(), true
}

// AccountOrders iterates the open orders of an account (resting and
// pending stops) in acceptance order.
func (b *Book) AccountOrders(account uint32) iter.Seq[OrderInfo] {
	return func(yield func(OrderInfo) bool) {
		l := b.accounts.find(accountKey(account))
		if l == nil {
			return
		}
		for r := l.head; r != 0; r = b.orders[r].accNext {
			if !yield(b.orders[r].info()) {
				return
			}
		}
	}
}

// AccountLen returns the number of open orders of account.
func (b *Book) AccountLen(account uint32) int {
	if l := b.accounts.find(accountKey(account)); l != nil {
		return int(l.count)
	}
	return 0
}

// AccountOrdersAfter iterates the open orders of account accepted after
// the open order id, so a caller paging through a long list resumes in
// O(1). ok is false, and nothing is iterated, when id is not an open
// order of account (it closed since): walk AccountOrders instead.
func (b *Book) AccountOrdersAfter(account uint32, id uint64) (seq iter.Seq[OrderInfo], ok bool) {
	r := b.ids.get(id)
	if r == 0 || b.orders[r].account != account {
		return func(func(OrderInfo) bool) {}, false
	}
	return func(yield func(OrderInfo) bool) {
		for r := b.orders[r].accNext; r != 0; r = b.orders[r].accNext {
			if !yield(b.orders[r].info()) {
				return
			}
		}
	}, true
}

// Len returns the number of open orders, pending stops included.
func (b *Book) Len() int { return b.ids.t.len() }

// LastPrice returns the price of the last trade, if any.
func (b *Book) LastPrice() (int64, bool) { return b.last, b.hasLast }

// Seq returns the sequence number of the last event emitted.
func (b *Book) Seq() uint64 { return b.seq }

// NextExpiry returns the earliest ExpireAt of the open GTD/DAY orders, so
// the caller knows when an Expire command will have something to do.
func (b *Book) NextExpiry() (int64, bool) {
	if len(b.expiry) == 0 {
		return 0, false
	}
	return b.expiry[0].at, true
}
