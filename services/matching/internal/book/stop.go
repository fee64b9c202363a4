package book

// stopReached reports whether the last trade price has reached a stop
// order's trigger.
func (b *Book) stopReached(side Side, trigger int64) bool {
	if !b.hasLast {
		return false
	}
	if side == Buy {
		return b.last >= trigger
	}
	return b.last <= trigger
}

// armStop puts a registered stop order into its stop book, or straight
// into the trigger queue when its trigger is already reached.
func (b *Book) armStop(r orderRef) {
	o := &b.orders[r]
	if b.stopReached(o.side, o.trigger) {
		b.trigger(r)
		return
	}
	s := b.stopSide(o.side)
	// In a stop book a level's total is the pending quantity; nothing
	// reads it but the invariant checks.
	o.visible = o.remaining
	o.loc = locStop
	b.pushBack(s, b.levelFor(s, o.trigger), r)
}

// onTrade records the last price and moves every stop it reaches into
// the trigger queue. Checking after each trade, not after the whole
// taker, keeps triggering faithful to the prices actually printed.
func (b *Book) onTrade(price int64) {
	b.last = price
	b.hasLast = true
	if b.stops[0].orders+b.stops[1].orders == 0 {
		return
	}
	for _, side := range [2]Side{Buy, Sell} {
		s := b.stopSide(side)
		for {
			lr := s.index.best()
			if lr == 0 || !b.stopReached(side, b.levels[lr].price) {
				break
			}
			for b.levels[lr].head != 0 {
				r := b.levels[lr].head
				b.unlink(s, r)
				b.trigger(r)
			}
			b.dropLevelIfEmpty(s, lr)
		}
	}
}

// trigger reports a stop as triggered and appends it to the trigger
// queue; it executes once the current taker has finished.
func (b *Book) trigger(r orderRef) {
	o := &b.orders[r]
	o.loc = locTriggered
	o.next = 0
	if b.trigTail != 0 {
		b.orders[b.trigTail].next = r
	} else {
		b.trigHead = r
	}
	b.trigTail = r
	b.emitOrder(EventTriggered, o, ReasonNone, o.trigger, 0)
}

// runTriggered executes queued stops in order until the queue is empty,
// including stops their own trades trigger. It loops instead of
// recursing, so a long cascade cannot grow the stack.
func (b *Book) runTriggered() {
	for b.trigHead != 0 {
		r := b.trigHead
		o := &b.orders[r]
		b.trigHead = o.next
		if b.trigHead == 0 {
			b.trigTail = 0
		}
		o.next = 0
		o.loc = locNone
		if reject := b.precheck(r); reject != ReasonNone {
			b.closeRemaining(r, cancelReasonFor(reject))
			b.release(r)
			continue
		}
		b.execute(r)
	}
}

// cancelReasonFor maps a precheck rejection to the cancel reason used
// when the order had already been accepted.
func cancelReasonFor(reject Reason) Reason {
	switch reject {
	case RejectPostOnlyWouldCross:
		return CancelPostOnly
	case RejectFOKCannotFill:
		return CancelFOK
	default:
		return CancelNoLiquidity
	}
}
