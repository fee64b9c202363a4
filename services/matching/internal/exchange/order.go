package exchange

import "github.com/bourse-dev/bourse/services/matching/internal/book"

// OrderType is the order type clients ask for. Market and Stop orders reach the book as limit
// orders at their protection price, so that no fill is ever worse than what risk reserved for.
type OrderType uint8

const (
	TypeLimit OrderType = iota + 1
	TypeMarket
	TypeStop
	TypeStopLimit
)

// Status is where an order is in its life.
type Status uint8

const (
	StatusNew Status = iota + 1
	StatusPartiallyFilled
	StatusFilled
	StatusCancelled
	StatusRejected
	StatusPendingTrigger
)

func statusName(s Status) string {
	switch s {
	case StatusFilled:
		return "filled"
	case StatusCancelled:
		return "cancelled"
	case StatusRejected:
		return "rejected"
	}
	return "open"
}

func (s Status) closed() bool {
	return s == StatusFilled || s == StatusCancelled || s == StatusRejected
}

// RejectReason says why an order or amend was refused; nothing changed.
type RejectReason uint8

const (
	RejectNone RejectReason = iota
	RejectRisk
	RejectPostOnlyWouldCross
	RejectFOKCannotFill
	RejectNoLiquidity
	RejectUnknownOrder
	RejectAmendQtyTooLow
	RejectInvalidOrder
	RejectOrderClosed
)

// OrderRequest is a new order, already parsed into ticks and lots. Zero prices mean absent.
type OrderRequest struct {
	Account       string
	Symbol        string
	ClientOrderID string
	Side          book.Side
	Type          OrderType
	TIF           book.TimeInForce
	Price         int64
	TriggerPrice  int64
	Qty           int64
	DisplayQty    int64
	PostOnly      bool
	STP           book.STPMode
	ExpireAt      int64
	ReduceOnly    bool
}

// OrderRef names an order by id or by the client's id, within one account and symbol.
type OrderRef struct {
	Account       string
	Symbol        string
	OrderID       uint64
	ClientOrderID string
}

// AmendRequest changes an order; zero fields keep their value.
type AmendRequest struct {
	OrderRef
	Price, Qty, TriggerPrice int64
}

// Order is a copy of an order's state.
type Order struct {
	ID            uint64
	ClientOrderID string
	Account       string
	Symbol        string
	Side          book.Side
	Type          OrderType
	TIF           book.TimeInForce
	Price         int64 // limit price; for Market and Stop, the protection price
	TriggerPrice  int64
	Qty           int64
	Filled        int64
	// FilledNotional is Σ price × quantity over the order's fills, in ticks × lots.
	FilledNotional Notional
	Remaining      int64
	DisplayQty     int64
	PostOnly       bool
	STP            book.STPMode
	Status         Status
	Reject         RejectReason
	RiskReject     string
	Cancel         book.Reason
	ExpireAt       int64
	Created        int64
	Updated        int64

	// reservation is the risk service's reservation held for the open quantity, at reservePrice.
	reservation  uint64
	reservePrice int64
	acct         uint32
}

// Fill is one execution of an order.
type Fill struct {
	OrderID       uint64
	ClientOrderID string
	Account       string
	Symbol        string
	Side          book.Side
	Price         int64
	Qty           int64
	Maker         bool
	Seq           uint64
	Time          int64
}

// Result answers a command.
type Result struct {
	Order     Order
	Fills     []Fill
	Duplicate bool
	Cancelled int // CancelAll
	Err       error
}

// rejectFromBook maps the book's reject reasons to the API's.
func rejectFromBook(r book.Reason) RejectReason {
	switch r {
	case book.RejectPostOnlyWouldCross:
		return RejectPostOnlyWouldCross
	case book.RejectFOKCannotFill:
		return RejectFOKCannotFill
	case book.RejectNoLiquidity:
		return RejectNoLiquidity
	case book.RejectUnknownOrder:
		return RejectUnknownOrder
	case book.RejectAmendQtyTooLow:
		return RejectAmendQtyTooLow
	}
	return RejectInvalidOrder
}
