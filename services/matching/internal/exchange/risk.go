package exchange

import (
	"context"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/matching/internal/book"
)

// Risk is the risk service as the exchange needs it. Calls are batched by the exchange; an error
// of kind InvalidArgument, NotFound, AlreadyExists or FailedPrecondition is permanent, anything
// else may succeed on retry.
type Risk interface {
	// Symbol returns the risk service's definition of a symbol.
	Symbol(ctx context.Context, symbol string) (RiskSymbol, error)
	// Check vets orders and reserves what they need; one decision per check, in order.
	Check(ctx context.Context, checks []RiskCheck) ([]RiskDecision, error)
	// Settle applies executions (idempotent by ExecID), then releases reservations (ids no longer
	// open are not an error).
	Settle(ctx context.Context, execs []Execution, releases []uint64) error
	// Restore recreates the reservations of open orders after a risk restart. A risk service that
	// already holds them (it did not restart) answers with a FailedPrecondition or AlreadyExists
	// error, which the exchange accepts.
	Restore(ctx context.Context, rs []Reservation) error
}

// RiskCheck is one order to vet.
type RiskCheck struct {
	Spec       *Spec
	Account    string
	Side       book.Side
	Market     bool
	Price      int64 // ticks: the limit, or a market order's protection price
	Qty        int64 // lots
	ReduceOnly bool
}

// RiskDecision is the risk service's answer for one check.
type RiskDecision struct {
	Accepted      bool
	ReservationID uint64
	Reason        string // the risk service's reject reason when refused
}

// Execution is one side of a trade, for settlement.
type Execution struct {
	Spec          *Spec
	ExecID        string
	ReservationID uint64
	Account       string
	Side          book.Side
	Price         int64
	Qty           int64
	Taker         bool
	Time          int64
}

// Reservation is an open order's claim, to restore after a risk restart.
type Reservation struct {
	Spec    *Spec
	ID      uint64
	Account string
	Side    book.Side
	Price   int64
	Qty     int64
}

// permanent reports whether retrying err cannot help.
func permanent(err error) bool {
	switch errs.KindOf(err) {
	case errs.KindInvalidArgument, errs.KindNotFound, errs.KindAlreadyExists, errs.KindFailedPrecondition, errs.KindPermissionDenied:
		return true
	}
	return false
}
