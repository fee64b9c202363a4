package engine

// OrderCheck is a new order to vet before it reaches the book.
type OrderCheck struct {
	Account string
	Symbol  string
	Side    Side
	Type    OrderType
	// Price is the limit price in ticks; for a market order, the protection price the caller chose
	// (the worst price it may fill at). The reservation is sized at this price.
	Price int64
	Qty   int64 // lots
	// ReduceOnly accepts the order only if it shrinks the existing position.
	ReduceOnly bool
	// Now is the caller's clock, unix nanoseconds. It drives the rate limiter and the daily-loss
	// day boundary; the engine never reads a clock itself.
	Now int64
	// Owner, from Engine.Owner, makes the reservation that matching shard's: its SyncReservations
	// replaces it. Session and Generation are the owner's, recorded for that replacement. The zero
	// Owner is nobody's.
	Owner      OwnerRef
	Session    uint64
	Generation uint64
	// Replaces, when it names an open reservation of the account, is released as part of this
	// check: the order is checked as if it were gone, and if the order is refused it stays as it was.
	// An amend that reprices or grows an order so never needs the funds of both at once.
	Replaces uint64
}

// CheckOrder runs the pre-trade checks and, if they pass, reserves the funds the order needs: for a
// buy, price × qty plus the maximum taker fee in the quote asset; for a sell, qty in the base asset.
// It returns the reservation id (0 when rejected) and Accepted or the first reason to refuse.
//
// Checks run in this order, so a reject names the first that failed: unknown account, unknown
// symbol, invalid side/type, quantity, price; kill switch (halted); order rate (the token is spent
// even if a later check rejects the order, since the rate limits submissions); notional overflow;
// price band; max order notional; reduce-only; daily loss and drawdown (skipped for orders that
// reduce the position); max position; funds.
//
// Reservations are not durable events: they live in memory and are rebuilt with RestoreReservation.
// CheckOrder is safe for concurrent use; checks on one account are serialised so the account can
// never be over-reserved, checks on different accounts run in parallel, and the accept path does not
// allocate once the account's reservation slab has grown to its working size.
func (e *Engine) CheckOrder(c OrderCheck) (uint64, Reject) {
	acct := e.accounts.lookup(c.Account)
	if acct == nil {
		return 0, RejectUnknownAccount
	}
	sym := e.catalog.Load().symbols[c.Symbol]
	if sym == nil {
		return 0, RejectUnknownSymbol
	}
	switch {
	case !c.Side.valid() || !c.Type.valid():
		return 0, RejectInvalidOrder
	case c.Qty <= 0:
		return 0, RejectInvalidQuantity
	case c.Price <= 0:
		return 0, RejectInvalidPrice
	}
	e.markReservationsUsed()
	global := TradingState(e.global.Load())

	acct.mu.Lock()
	var old reservation
	replacing := c.Replaces != 0 && e.takeReplaced(acct, c.Replaces, &old)
	id, slot, reject := e.reserve(acct, sym, &c, global)
	if replacing && reject != Accepted {
		e.putBack(acct, old)
	}
	acct.mu.Unlock()

	// Publishing the id after unlocking keeps the account's critical section short. Nobody can ask
	// for the id before this call returns it, so the gap is invisible.
	if reject == Accepted {
		e.dir.insert(id, locate(acct.index, slot))
	}
	return id, reject
}

// reserve runs the account-dependent checks and books the reservation. The caller holds acct.mu.
func (e *Engine) reserve(acct *account, sym *symbol, c *OrderCheck, global TradingState) (uint64, int32, Reject) {
	state := max(global, acct.state)
	if state == TradingHalted {
		return 0, 0, RejectHalted
	}
	if !acct.bucket.take(c.Now, acct.limits.OrderRate) {
		return 0, 0, RejectOrderRate
	}
	pos := acct.positionOf(sym.index)
	if pos == nil {
		pos = &zeroPosition
	}
	limits := &acct.limits
	if pos.hasLimits {
		limits = &pos.limits
	}

	notional, ok := sym.notional(c.Price, c.Qty)
	if !ok {
		return 0, 0, RejectNotionalTooLarge
	}
	mark := sym.mark.Load()
	if limits.PriceBandPPM > 0 {
		ref := mark
		if ref == 0 {
			ref = sym.spec.ReferencePrice
		}
		if ref > 0 && outsideBand(c.Price, ref, limits.PriceBandPPM) {
			return 0, 0, RejectPriceBand
		}
	}
	if limits.MaxOrderNotional > 0 && notional > limits.MaxOrderNotional {
		return 0, 0, RejectNotionalTooLarge
	}

	reduces := pos.reduces(c.Side, c.Qty)
	if (c.ReduceOnly || state == TradingReduceOnly) && !reduces {
		return 0, 0, RejectReduceOnly
	}
	if !reduces {
		if limits.MaxDailyLoss > 0 && pos.dailyLoss(e.dayIndex(c.Now)) >= limits.MaxDailyLoss {
			return 0, 0, RejectMaxDailyLoss
		}
		if limits.MaxDrawdown > 0 && pos.drawdown(sym, mark) >= limits.MaxDrawdown {
			return 0, 0, RejectMaxDrawdown
		}
	}
	if limits.MaxPosition > 0 && pos.exposureAfter(c.Side, c.Qty) > limits.MaxPosition {
		return 0, 0, RejectMaxPosition
	}

	feePPM := sym.spec.TakerFeePPM
	amount, ok := sym.reserveAmount(c.Side, c.Price, c.Qty, feePPM)
	if !ok {
		return 0, 0, RejectNotionalTooLarge
	}
	if acct.balanceOf(sym.reservedAsset(c.Side).index).available() < amount {
		return 0, 0, RejectInsufficientFunds
	}

	id := e.takeID(acct)
	slot := acct.open(reservation{id: id, symbol: sym, side: c.Side, price: c.Price, qty: c.Qty, amount: amount, feePPM: feePPM,
		owner: int32(c.Owner), session: c.Session, generation: c.Generation})
	return id, slot, Accepted
}

// takeReplaced releases the account's open reservation id into old, for a check that replaces it.
// The caller holds acct.mu.
func (e *Engine) takeReplaced(acct *account, id uint64, old *reservation) bool {
	loc, ok := e.dir.get(id)
	if !ok || loc.account() != acct.index {
		return false
	}
	slot := loc.slot()
	if int(slot) >= len(acct.reservations) || !acct.reservations[slot].live || acct.reservations[slot].id != id {
		return false
	}
	if _, ok := e.dir.remove(id); !ok {
		return false // a concurrent Release has it
	}
	*old = acct.reservations[slot]
	acct.releaseSlot(slot)
	return true
}

// putBack reopens a reservation takeReplaced released, unchanged. The caller holds acct.mu, which it
// has not released since, so nothing can have taken the funds or the id.
func (e *Engine) putBack(acct *account, old reservation) {
	slot := acct.open(old)
	e.dir.insert(old.id, locate(acct.index, slot))
}
