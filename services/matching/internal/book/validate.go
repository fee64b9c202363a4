package book

// validate checks a new order against the command rules and the
// instrument limits. It returns ReasonNone when the order may enter.
func (b *Book) validate(c *NewOrder) Reason {
	switch {
	case c.ID == 0:
		return RejectInvalidOrderID
	case !c.Side.valid():
		return RejectInvalidSide
	case c.Type > StopLimit:
		return RejectInvalidType
	case c.TIF > DAY:
		return RejectInvalidTIF
	case c.STP > STPAllow:
		return RejectInvalidSTP
	case !b.validQty(c.Qty):
		return RejectInvalidQty
	}
	if c.Type.hasLimitPrice() && !b.validPrice(c.Price) {
		return RejectInvalidPrice
	}
	if c.Type == Stop && c.Price != 0 && !b.validPrice(c.Price) {
		return RejectInvalidPrice
	}
	if c.Type.isStop() {
		if c.TriggerPrice == 0 {
			return RejectMissingTriggerPrice
		}
		if !b.validPrice(c.TriggerPrice) {
			return RejectInvalidTriggerPrice
		}
	}
	if c.DisplayQty < 0 || c.DisplayQty > c.Qty || (c.DisplayQty > 0 && !c.Type.hasLimitPrice()) {
		return RejectInvalidDisplayQty
	}
	if c.PostOnly && (!c.Type.hasLimitPrice() || c.TIF.immediate()) {
		return RejectInvalidPostOnly
	}
	if c.TIF.expires() && c.ExpireAt <= c.Now {
		return RejectInvalidExpiry
	}
	return ReasonNone
}

func (b *Book) validPrice(p int64) bool { return p > 0 && p <= b.inst.MaxPrice }

func (b *Book) validQty(q int64) bool { return q >= b.inst.MinQty && q <= b.inst.MaxQty }
