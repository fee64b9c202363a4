package book

func (b *Book) amend(cmd *Amend) {
	r := b.ids.get(cmd.ID)
	if r == 0 {
		b.emitReject(cmd.ID, 0, 0, RejectUnknownOrder)
		return
	}
	o := &b.orders[r]
	price, qty, trigger := o.price, o.qty, o.trigger
	if cmd.Price != 0 {
		price = cmd.Price
	}
	if cmd.Qty != 0 {
		qty = cmd.Qty
	}
	if cmd.TriggerPrice != 0 {
		trigger = cmd.TriggerPrice
	}
	var reason Reason
	switch {
	case cmd.Price != 0 && (!o.limited() || !b.validPrice(price)):
		reason = RejectInvalidPrice
	case cmd.TriggerPrice != 0 && (o.loc != locStop || !b.validPrice(trigger)):
		reason = RejectInvalidTriggerPrice
	case !b.validQty(qty):
		reason = RejectInvalidQty
	case qty-o.filled-o.cancelled <= 0:
		reason = RejectAmendQtyTooLow
	}
	if reason != ReasonNone {
		b.emitReject(cmd.ID, o.account, o.side, reason)
		return
	}
	remaining := qty - o.filled - o.cancelled
	if o.loc == locStop {
		b.amendStop(r, price, qty, remaining, trigger)
	} else {
		b.amendResting(r, price, qty, remaining)
	}
}

// amendResting applies an amend to an order in the visible book.
func (b *Book) amendResting(r orderRef, price, qty, remaining int64) {
	o := &b.orders[r]
	s := b.side(o.side)
	lr := o.level
	l := &b.levels[lr]

	if price == o.price && remaining <= o.remaining {
		// A decrease in place keeps time priority.
		o.qty, o.remaining = qty, remaining
		shown := min(o.visible, remaining)
		hidden := o.visible - shown
		o.visible = shown
		l.visible -= hidden
		b.emitOrder(EventAmended, o, ReasonNone, o.price, o.qty)
		if hidden != 0 {
			b.emitLevel(o.side, l.price, l.visible)
		}
		return
	}

	b.unlink(s, r)
	oldPrice := o.price
	o.price, o.qty, o.remaining = price, qty, remaining
	b.emitOrder(EventAmended, o, ReasonNone, o.price, o.qty)

	if price == oldPrice {
		// A larger quantity at the same price cannot cross (the order
		// was resting), so it simply rejoins at the back.
		o.visible = o.slice()
		b.pushBack(s, lr, r)
		b.emitLevel(o.side, l.price, l.visible)
		return
	}

	b.emitLevel(o.side, l.price, l.visible)
	b.dropLevelIfEmpty(s, lr)
	o.loc = locNone
	if reject := b.precheck(r); reject != ReasonNone {
		b.closeRemaining(r, cancelReasonFor(reject))
		b.release(r)
		return
	}
	b.execute(r)
	b.runTriggered()
}

// amendStop applies an amend to a stop order waiting for its trigger. A
// decrease with the same trigger keeps its place in the trigger queue;
// anything else moves it to the back, or triggers it if the new trigger is
// already reached.
func (b *Book) amendStop(r orderRef, price, qty, remaining, trigger int64) {
	o := &b.orders[r]
	s := b.stopSide(o.side)
	if trigger == o.trigger && remaining <= o.remaining {
		b.levels[o.level].visible -= o.visible - remaining
		o.price, o.qty, o.remaining, o.visible = price, qty, remaining, remaining
		b.emitOrder(EventAmended, o, ReasonNone, o.price, o.qty)
		return
	}
	lr := o.level
	b.unlink(s, r)
	b.dropLevelIfEmpty(s, lr)
	o.price, o.qty, o.remaining, o.trigger = price, qty, remaining, trigger
	b.emitOrder(EventAmended, o, ReasonNone, o.price, o.qty)
	b.armStop(r)
	b.runTriggered()
}
