package book

// orderRef indexes Book.orders. Zero is the nil reference, so slot 0 of
// the pool is never used. Indices instead of pointers keep the pool free
// of pointers, which the garbage collector then never scans, and let the
// pool grow by copying.
type orderRef uint32

// location tells which container currently links an order through its
// prev/next fields.
type location uint8

const (
	locNone      location = iota // in flight inside a command, or free
	locBook                      // in a price level of the visible book
	locStop                      // in a trigger level of a stop book
	locTriggered                 // in the queue of triggered stops
)

// order is the book's internal order record, stored by value in a pool.
type order struct {
	id        uint64
	acceptSeq uint64
	price     int64 // limit price; 0 for Market and Stop
	trigger   int64
	qty       int64 // total quantity after amends
	filled    int64
	cancelled int64 // removed by STPDecrement while the order stayed open
	remaining int64 // qty - filled - cancelled
	visible   int64 // shown in the level total; <= remaining
	display   int64 // iceberg slice size, 0 when fully visible
	expireAt  int64

	level      levelRef
	prev, next orderRef // level FIFO, trigger queue, or free list
	accPrev    orderRef // account list (acceptance order)
	accNext    orderRef
	heapPos    int32 // 1-based position in the expiry heap, 0 when absent

	account    uint32
	side       Side
	typ        OrderType
	tif        TimeInForce
	stp        STPMode
	postOnly   bool
	loc        location
	registered bool // in the id table and its account list
}

// isMarket reports whether the order never rests. A triggered Stop
// executes as a market order.
func (o *order) isMarket() bool { return o.typ == Market || o.typ == Stop }

// limited reports whether the order trades only at its price or better:
// limit orders, and a Stop that carries a protection price.
func (o *order) limited() bool { return o.price != 0 }

// slice returns the quantity to show when the order (re)joins a level.
func (o *order) slice() int64 {
	if o.display > 0 && o.display < o.remaining {
		return o.display
	}
	return o.remaining
}

// crosses reports whether an order on side with limit price would trade
// against a resting level at levelPrice.
func crosses(side Side, limit, levelPrice int64) bool {
	if side == Buy {
		return limit >= levelPrice
	}
	return limit <= levelPrice
}

// allocOrder takes a zeroed record from the free list, growing the pool
// only when the list is empty.
func (b *Book) allocOrder() orderRef {
	if r := b.freeOrders; r != 0 {
		b.freeOrders = b.orders[r].next
		b.orders[r] = order{}
		return r
	}
	b.orders = append(b.orders, order{})
	return orderRef(len(b.orders) - 1)
}

// release forgets an order that is no longer open: it leaves the id
// table, its account list and the expiry queue and returns to the free
// list. The caller has already unlinked it from any level.
func (b *Book) release(r orderRef) {
	o := &b.orders[r]
	if o.registered {
		b.ids.remove(o.id)
		b.unlinkAccount(r)
	}
	if o.heapPos != 0 {
		b.expiryRemove(r)
	}
	o.loc = locNone
	o.registered = false
	o.next = b.freeOrders
	b.freeOrders = r
}

// register makes an order findable by id, listed under its account and,
// for GTD/DAY, queued for expiry. It happens once, when the order first
// becomes open (rests or waits for a trigger).
func (b *Book) register(r orderRef) {
	o := &b.orders[r]
	if o.registered {
		return
	}
	o.registered = true
	b.ids.put(o.id, r)
	b.linkAccount(r)
	if o.tif.expires() {
		b.expiryPush(r)
	}
}

// closeRemaining cancels an order's whole open quantity and reports it.
// The caller unlinks and releases the order.
func (b *Book) closeRemaining(r orderRef, reason Reason) {
	o := &b.orders[r]
	q := o.remaining
	o.cancelled += q
	o.remaining = 0
	o.visible = 0
	b.emitOrder(EventCancelled, o, reason, o.price, q)
}

func (o *order) info() OrderInfo {
	st := StatusResting
	if o.loc == locStop {
		st = StatusPendingStop
	}
	return OrderInfo{
		ID:           o.id,
		Account:      o.account,
		Side:         o.side,
		Type:         o.typ,
		TIF:          o.tif,
		STP:          o.stp,
		PostOnly:     o.postOnly,
		Status:       st,
		Price:        o.price,
		TriggerPrice: o.trigger,
		Qty:          o.qty,
		Filled:       o.filled,
		Cancelled:    o.cancelled,
		Remaining:    o.remaining,
		Visible:      o.visible,
		DisplayQty:   o.display,
		ExpireAt:     o.expireAt,
		AcceptSeq:    o.acceptSeq,
	}
}
