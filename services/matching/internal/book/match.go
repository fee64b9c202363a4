package book

// precheck decides, before anything executes, whether an order that is
// about to take liquidity must be turned away: a post-only order that
// would cross, a market order facing an empty book, or a FOK order that
// cannot fill completely. It returns the reject reason; callers map it to
// a cancel reason when the order was already accepted.
func (b *Book) precheck(r orderRef) Reason {
	o := &b.orders[r]
	best := b.side(o.side.Opposite()).index.best()
	switch {
	case o.postOnly && best != 0 && crosses(o.side, o.price, b.levels[best].price):
		return RejectPostOnlyWouldCross
	case o.isMarket() && best == 0:
		return RejectNoLiquidity
	case o.tif == FOK && !b.canFill(r):
		return RejectFOKCannotFill
	}
	return ReasonNone
}

// canFill reports whether the order would fill completely, walking the
// opposite side the way matching would. Within a level the taker keeps
// trading until the level is exhausted, so hidden iceberg quantity counts
// too: refreshed slices stay at the same price. The exception is a
// same-account maker whose STP mode stops the taker (every mode except
// STPCancelOldest, which removes the maker, and STPAllow): refreshed
// slices queue behind it, so only the visible quantity ahead of it can
// fill.
func (b *Book) canFill(r orderRef) bool {
	o := &b.orders[r]
	need := o.remaining
	s := b.side(o.side.Opposite())
	for lr := s.index.best(); lr != 0; {
		l := &b.levels[lr]
		if o.limited() && !crosses(o.side, o.price, l.price) {
			return false
		}
		var total, aheadOfSelf int64
		for m := l.head; m != 0; m = b.orders[m].next {
			mo := &b.orders[m]
			if mo.account == o.account && o.stp != STPAllow {
				if o.stp == STPCancelOldest {
					continue
				}
				return need <= aheadOfSelf
			}
			total += mo.remaining
			aheadOfSelf += mo.visible
		}
		need -= total
		if need <= 0 {
			return true
		}
		lr = s.index.next(s.key(l.price))
	}
	return false
}

// execute runs an in-flight order as taker, then rests what is left or
// cancels it when the order may not rest.
func (b *Book) execute(r orderRef) {
	b.match(r)
	o := &b.orders[r]
	switch {
	case o.remaining == 0:
		b.release(r)
	case o.isMarket():
		b.closeRemaining(r, CancelMarketRemainder)
		b.release(r)
	case o.tif.immediate():
		// FOK never gets here with quantity left, because precheck
		// guaranteed the fill; IOC remainders end here.
		reason := CancelIOCRemainder
		if o.tif == FOK {
			reason = CancelFOK
		}
		b.closeRemaining(r, reason)
		b.release(r)
	default:
		b.rest(r)
	}
}

// rest puts an order at the back of its price level.
func (b *Book) rest(r orderRef) {
	o := &b.orders[r]
	s := b.side(o.side)
	o.visible = o.slice()
	o.loc = locBook
	lr := b.levelFor(s, o.price)
	b.pushBack(s, lr, r)
	l := &b.levels[lr]
	b.emitLevel(o.side, l.price, l.visible)
	b.register(r)
}

// match trades the taker against the opposite side while it crosses.
func (b *Book) match(r orderRef) {
	t := &b.orders[r]
	s := b.side(t.side.Opposite())
	for t.remaining > 0 {
		lr := s.index.best()
		if lr == 0 {
			return
		}
		if t.limited() && !crosses(t.side, t.price, b.levels[lr].price) {
			return
		}
		b.matchLevel(r, s, lr)
	}
}

// matchLevel trades the taker against one level in queue order until the
// taker or the level is exhausted, then reports the level once.
//
// Neither the order pool nor the level pool grows while matching, so the
// pointers taken here stay valid.
func (b *Book) matchLevel(r orderRef, s *ladderSide, lr levelRef) {
	t := &b.orders[r]
	l := &b.levels[lr]
	before := l.visible
	for t.remaining > 0 && l.head != 0 {
		mr := l.head
		m := &b.orders[mr]
		if m.account == t.account && t.stp != STPAllow {
			b.preventSelfTrade(r, mr, s)
			continue
		}
		q := min(t.remaining, m.visible)
		t.remaining -= q
		t.filled += q
		m.remaining -= q
		m.filled += q
		m.visible -= q
		l.visible -= q
		e := b.emit(EventTrade)
		e.OrderID, e.Account, e.Side, e.Remaining = t.id, t.account, t.side, t.remaining
		e.MakerID, e.MakerAccount, e.MakerRemaining = m.id, m.account, m.remaining
		e.Price, e.Qty = l.price, q
		b.onTrade(l.price)
		if m.visible == 0 {
			b.unlink(s, mr)
			if m.remaining > 0 {
				// Iceberg refresh: a new slice loses time priority.
				m.visible = m.slice()
				b.pushBack(s, lr, mr)
			} else {
				b.release(mr)
			}
		}
	}
	if l.visible != before || l.head == 0 {
		b.emitLevel(t.side.Opposite(), l.price, l.visible)
	}
	b.dropLevelIfEmpty(s, lr)
}
