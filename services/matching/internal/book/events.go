package book

import (
	"strconv"
)

// EventKind tells which fields of an Event are meaningful.
type EventKind uint8

const (
	// EventAccepted: OrderID, Account, Side, Price (limit, 0 for Market
	// and Stop), Qty, Remaining.
	EventAccepted EventKind = iota + 1
	// EventRejected: OrderID, Account, Side (as given in the command, if
	// any), Reason. Nothing changed in the book.
	EventRejected
	// EventTrade: taker in OrderID/Account/Side/Remaining, maker in
	// MakerID/MakerAccount/MakerRemaining, execution Price and Qty.
	// Remaining counts open quantity, hidden iceberg quantity included.
	EventTrade
	// EventCancelled: OrderID, Account, Side, Price (the order's limit
	// price), Reason, Qty (quantity removed by this event), Remaining
	// (open quantity left). Remaining is 0 unless the cause is
	// STPDecrement, which shrinks an order that stays open.
	EventCancelled
	// EventAmended: OrderID, Account, Side, Price, Qty (new total),
	// Remaining.
	EventAmended
	// EventTriggered: OrderID, Account, Side, Price (the trigger price).
	// The order now executes as Market (Stop) or Limit (StopLimit).
	EventTriggered
	// EventLevel: Side, Price, Qty (new visible total of the level; 0
	// means the level is gone). One event per level per change, for
	// incremental L2 market data.
	EventLevel
)

// Reason explains an EventRejected or EventCancelled.
type Reason uint8

const (
	ReasonNone Reason = iota

	// Reject reasons.
	RejectInvalidOrderID
	RejectInvalidSide
	RejectInvalidType
	RejectInvalidTIF
	RejectInvalidSTP
	RejectInvalidPrice        // limit price <= 0 or > MaxPrice
	RejectInvalidQty          // qty <= 0, < MinQty or > MaxQty
	RejectInvalidDisplayQty   // < 0, > Qty, or on Market/Stop
	RejectMissingTriggerPrice // Stop/StopLimit without TriggerPrice
	RejectInvalidTriggerPrice // < 0, > MaxPrice, or on a non-stop amend
	RejectInvalidExpiry       // GTD/DAY with ExpireAt <= Now
	RejectInvalidPostOnly     // PostOnly on Market/Stop or with IOC/FOK
	RejectDuplicateOrderID
	RejectUnknownOrder
	RejectPostOnlyWouldCross
	RejectFOKCannotFill
	RejectNoLiquidity // market order and the opposite side is empty
	RejectAmendQtyTooLow

	// Cancel reasons.
	CancelUser
	CancelIOCRemainder    // unfilled part of an IOC limit order
	CancelMarketRemainder // unfilled part of a market order
	CancelFOK             // a triggered FOK stop that could not fill
	CancelSTP             // self-trade prevention
	CancelExpired         // GTD / DAY expiry
	CancelPostOnly        // a triggered or amended post-only order would cross
	CancelNoLiquidity     // a triggered stop-market met an empty book
)

var reasonNames = [...]string{
	ReasonNone:                "none",
	RejectInvalidOrderID:      "invalid order id",
	RejectInvalidSide:         "invalid side",
	RejectInvalidType:         "invalid order type",
	RejectInvalidTIF:          "invalid time in force",
	RejectInvalidSTP:          "invalid stp mode",
	RejectInvalidPrice:        "invalid price",
	RejectInvalidQty:          "invalid qty",
	RejectInvalidDisplayQty:   "invalid display qty",
	RejectMissingTriggerPrice: "missing trigger price",
	RejectInvalidTriggerPrice: "invalid trigger price",
	RejectInvalidExpiry:       "invalid expiry",
	RejectInvalidPostOnly:     "invalid post-only",
	RejectDuplicateOrderID:    "duplicate order id",
	RejectUnknownOrder:        "unknown order",
	RejectPostOnlyWouldCross:  "post-only would cross",
	RejectFOKCannotFill:       "fok cannot fill",
	RejectNoLiquidity:         "no liquidity",
	RejectAmendQtyTooLow:      "amend qty too low",
	CancelUser:                "user",
	CancelIOCRemainder:        "ioc remainder",
	CancelMarketRemainder:     "market remainder",
	CancelFOK:                 "fok",
	CancelSTP:                 "stp",
	CancelExpired:             "expired",
	CancelPostOnly:            "post-only",
	CancelNoLiquidity:         "no liquidity",
}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

var kindNames = [...]string{
	EventAccepted:  "Accepted",
	EventRejected:  "Rejected",
	EventTrade:     "Trade",
	EventCancelled: "Cancelled",
	EventAmended:   "Amended",
	EventTriggered: "Triggered",
	EventLevel:     "Level",
}

func (k EventKind) String() string {
	if k != 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Event is one outcome of a command. It is a flat value (no pointers) so
// a slice of events can be reused without allocation; see EventKind for
// which fields each kind fills.
type Event struct {
	// Seq is assigned by the book, starting at 1 and increasing by one
	// per event across all commands.
	Seq            uint64
	OrderID        uint64
	MakerID        uint64
	Price          int64
	Qty            int64
	Remaining      int64
	MakerRemaining int64
	Account        uint32
	MakerAccount   uint32
	Kind           EventKind
	Reason         Reason
	Side           Side
}

// String renders the event without its sequence number, for logs and
// test tables.
func (e Event) String() string {
	buf := make([]byte, 0, 96)
	buf = append(buf, e.Kind.String()...)
	num := func(name string, v int64) {
		buf = append(buf, ' ')
		buf = append(buf, name...)
		buf = append(buf, '=')
		buf = strconv.AppendInt(buf, v, 10)
	}
	switch e.Kind {
	case EventLevel:
		buf = append(buf, ' ')
		buf = append(buf, e.Side.String()...)
		num("px", e.Price)
		num("qty", e.Qty)
	case EventTrade:
		num("taker", int64(e.OrderID))
		num("maker", int64(e.MakerID))
		num("px", e.Price)
		num("qty", e.Qty)
		num("rem", e.Remaining)
		num("mrem", e.MakerRemaining)
	case EventRejected:
		num("id", int64(e.OrderID))
		buf = append(buf, " reason="...)
		buf = append(buf, e.Reason.String()...)
	case EventCancelled:
		num("id", int64(e.OrderID))
		num("qty", e.Qty)
		num("rem", e.Remaining)
		buf = append(buf, " reason="...)
		buf = append(buf, e.Reason.String()...)
	case EventTriggered:
		num("id", int64(e.OrderID))
		num("px", e.Price)
	default:
		num("id", int64(e.OrderID))
		num("px", e.Price)
		num("qty", e.Qty)
		num("rem", e.Remaining)
	}
	return string(buf)
}

// emit appends an event of the given kind, stamped with the next
// sequence number, to the output of the running command and returns it
// for the caller to fill in; filling in place saves copying the event
// twice on the hot path.
func (b *Book) emit(kind EventKind) *Event {
	b.seq++
	b.out = append(b.out, Event{Seq: b.seq, Kind: kind})
	return &b.out[len(b.out)-1]
}

func (b *Book) emitOrder(kind EventKind, o *order, reason Reason, price, qty int64) {
	e := b.emit(kind)
	e.Reason = reason
	e.OrderID = o.id
	e.Account = o.account
	e.Side = o.side
	e.Price = price
	e.Qty = qty
	e.Remaining = o.remaining
}

func (b *Book) emitReject(id uint64, account uint32, side Side, reason Reason) {
	e := b.emit(EventRejected)
	e.Reason, e.OrderID, e.Account, e.Side = reason, id, account, side
}

func (b *Book) emitLevel(side Side, price, visible int64) {
	e := b.emit(EventLevel)
	e.Side, e.Price, e.Qty = side, price, visible
}
