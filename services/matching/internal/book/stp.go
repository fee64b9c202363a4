package book

// preventSelfTrade applies the taker's STP mode when the maker at the
// head of the level has the same account. It always changes the book
// (removes or shrinks the maker, or closes the taker), so the matching
// loop that calls it makes progress.
func (b *Book) preventSelfTrade(tr, mr orderRef, s *ladderSide) {
	t := &b.orders[tr]
	switch t.stp {
	case STPCancelOldest:
		b.cancelMaker(mr, s)
	case STPCancelBoth:
		b.cancelMaker(mr, s)
		b.closeRemaining(tr, CancelSTP)
	case STPDecrement:
		m := &b.orders[mr]
		q := min(t.remaining, m.remaining)
		m.remaining -= q
		m.cancelled += q
		if v := min(m.visible, m.remaining); v != m.visible {
			b.levels[m.level].visible -= m.visible - v
			m.visible = v
		}
		t.remaining -= q
		t.cancelled += q
		b.emitOrder(EventCancelled, m, CancelSTP, m.price, q)
		b.emitOrder(EventCancelled, t, CancelSTP, t.price, q)
		if m.remaining == 0 {
			b.unlink(s, mr)
			b.release(mr)
		}
	default: // STPCancelNewest
		b.closeRemaining(tr, CancelSTP)
	}
}

// cancelMaker removes a resting order during matching. The level is
// reported and dropped by the matching loop, not here.
func (b *Book) cancelMaker(mr orderRef, s *ladderSide) {
	b.unlink(s, mr)
	b.closeRemaining(mr, CancelSTP)
	b.release(mr)
}
