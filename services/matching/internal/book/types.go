package book

import "strconv"

// Side is the side of an order. The zero value is invalid on purpose, so a
// command that forgets to set it is rejected instead of silently buying.
type Side uint8

const (
	Buy  Side = 1
	Sell Side = 2
)

// Opposite returns the side an order of side s trades against.
func (s Side) Opposite() Side { return 3 - s }

func (s Side) String() string {
	switch s {
	case Buy:
		return "buy"
	case Sell:
		return "sell"
	}
	return "side(" + strconv.Itoa(int(s)) + ")"
}

func (s Side) valid() bool { return s == Buy || s == Sell }

// index maps Buy to 0 and Sell to 1 for per-side arrays.
func (s Side) index() int { return int(s) - 1 }

// OrderType selects how an order executes.
type OrderType uint8

const (
	// Limit executes at its limit price or better and may rest.
	Limit OrderType = iota
	// Market executes against whatever liquidity exists and never rests.
	Market
	// Stop waits for the last trade price to reach TriggerPrice, then
	// enters as a Market order.
	Stop
	// StopLimit waits like Stop, then enters as a Limit order at Price.
	StopLimit
)

// hasLimitPrice reports whether the order carries a limit price once it
// is live (a triggered StopLimit behaves like a Limit).
func (t OrderType) hasLimitPrice() bool { return t == Limit || t == StopLimit }

// hasPrice reports whether an order of type t may carry a price: a Stop's
// is its protection, the worst price it may trade at once triggered.
func (t OrderType) hasPrice() bool { return t.hasLimitPrice() || t == Stop }

// isStop reports whether the order waits for a trigger before it executes.
func (t OrderType) isStop() bool { return t == Stop || t == StopLimit }

// TimeInForce selects how long an order stays open.
type TimeInForce uint8

const (
	// GTC rests until filled or cancelled.
	GTC TimeInForce = iota
	// IOC fills what it can immediately; the remainder is cancelled.
	IOC
	// FOK fills entirely and immediately, or not at all.
	FOK
	// GTD rests until NewOrder.ExpireAt (unix nanoseconds).
	GTD
	// DAY rests until the session end, passed in NewOrder.ExpireAt.
	DAY
)

// expires reports whether orders with this time in force join the expiry
// queue.
func (t TimeInForce) expires() bool { return t == GTD || t == DAY }

// immediate reports whether the remainder is cancelled instead of rested.
func (t TimeInForce) immediate() bool { return t == IOC || t == FOK }

// STPMode is the self-trade prevention policy of the incoming (taker)
// order; it decides what happens when the taker meets a resting order of
// the same account. The zero value cancels the taker, the safe default.
type STPMode uint8

const (
	// STPCancelNewest cancels the taker's remaining quantity.
	STPCancelNewest STPMode = iota
	// STPCancelOldest cancels the resting order; the taker continues.
	STPCancelOldest
	// STPCancelBoth cancels the resting order and the taker.
	STPCancelBoth
	// STPDecrement reduces both orders by the smaller remaining quantity
	// without a trade; whichever reaches zero is closed.
	STPDecrement
	// STPAllow lets the account trade with itself.
	STPAllow
)

// Instrument holds the per-symbol limits the book validates against.
// Prices are integer ticks and quantities integer lots; converting from
// and to decimal strings is the caller's job.
type Instrument struct {
	// TickSize and LotSize document the decimal value of one tick and
	// one lot for the caller; the book never reads them.
	TickSize int64
	LotSize  int64
	// MinQty and MaxQty bound an order's quantity in lots. Zero means
	// 1 and DefaultMaxQty respectively. Level totals are int64 sums, so
	// MaxQty times the most orders one price can hold must fit in int64.
	MinQty int64
	MaxQty int64
	// MaxPrice bounds limit and trigger prices in ticks. Zero means
	// DefaultMaxPrice.
	MaxPrice int64
}

// Defaults applied to a zero Instrument limit. They keep level totals and
// price keys far from int64 overflow.
const (
	DefaultMaxQty   int64 = 1 << 50
	DefaultMaxPrice int64 = 1 << 50
)

func (in Instrument) normalized() Instrument {
	if in.MinQty <= 0 {
		in.MinQty = 1
	}
	if in.MaxQty <= 0 || in.MaxQty > DefaultMaxQty {
		in.MaxQty = DefaultMaxQty
	}
	if in.MaxPrice <= 0 || in.MaxPrice > DefaultMaxPrice {
		in.MaxPrice = DefaultMaxPrice
	}
	return in
}

// NewOrder is the command for Book.Submit.
type NewOrder struct {
	// ID identifies the order; it must be non-zero and unique among the
	// book's open orders. The book only remembers open orders, so
	// uniqueness over all time is the caller's responsibility.
	ID      uint64
	Account uint32
	Side    Side
	Type    OrderType
	TIF     TimeInForce
	// Price is the limit price in ticks for Limit and StopLimit; it is
	// ignored for Market and Stop.
	Price int64
	// TriggerPrice is required for Stop and StopLimit. Buy stops trigger
	// when the last trade price is >= TriggerPrice, sell stops when it is
	// <= TriggerPrice.
	TriggerPrice int64
	// Qty is the order quantity in lots.
	Qty int64
	// DisplayQty > 0 makes a Limit or StopLimit order an iceberg that
	// shows at most DisplayQty at a time.
	DisplayQty int64
	// PostOnly orders are rejected instead of taking liquidity.
	PostOnly bool
	STP      STPMode
	// ExpireAt is the expiry for GTD and the session end for DAY, in unix
	// nanoseconds; it must be later than Now.
	ExpireAt int64
	// Now is the command time in unix nanoseconds. The book never reads a
	// clock; it uses Now only to validate ExpireAt.
	Now int64
}

// Amend is the command for Book.Amend. A zero field keeps the current
// value.
type Amend struct {
	ID uint64
	// Price is the new limit price (Limit and StopLimit orders only).
	Price int64
	// Qty is the new total quantity, including what has already been
	// filled. It must leave a positive open quantity, otherwise the amend
	// is rejected with RejectAmendQtyTooLow and the order is unchanged.
	Qty int64
	// TriggerPrice is the new trigger of a stop order that has not
	// triggered yet.
	TriggerPrice int64
}

// OrderStatus tells where an open order lives.
type OrderStatus uint8

const (
	// StatusResting orders are in the visible book.
	StatusResting OrderStatus = iota + 1
	// StatusPendingStop orders wait for their trigger price.
	StatusPendingStop
)

// OrderInfo is a read-only copy of an open order returned by queries.
type OrderInfo struct {
	ID           uint64
	Account      uint32
	Side         Side
	Type         OrderType
	TIF          TimeInForce
	STP          STPMode
	PostOnly     bool
	Status       OrderStatus
	Price        int64
	TriggerPrice int64
	// Qty is the current total quantity (after amends).
	// Qty == Filled + Cancelled + Remaining always holds; Cancelled is
	// quantity removed by STPDecrement.
	Qty       int64
	Filled    int64
	Cancelled int64
	Remaining int64
	// Visible is the quantity shown in L2 (Remaining unless iceberg).
	Visible    int64
	DisplayQty int64
	ExpireAt   int64
	// AcceptSeq is the sequence number of the order's Accepted event; it
	// orders an account's open orders.
	AcceptSeq uint64
}

// DepthLevel is one aggregated L2 price level.
type DepthLevel struct {
	Price  int64
	Qty    int64 // visible quantity
	Orders int
}
