package exchange

import (
	"context"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/matching/internal/book"
)

// Risk is the risk service as the exchange needs it (see the README's "Joint invariants" for the
// protocol). An error of kind InvalidArgument, NotFound, AlreadyExists, FailedPrecondition or
// PermissionDenied is a refusal that retrying cannot fix; anything else may succeed on retry, and a
// Check that fails so may or may not have reserved.
type Risk interface {
	// Symbol returns the risk service's definition of a symbol.
	Symbol(ctx context.Context, symbol string) (RiskSymbol, error)
	// Check vets orders and reserves what they need; one decision per check, in order. The
	// reservations belong to (Owner, check's shard) and carry Session and Generation, for Sync.
	Check(ctx context.Context, b CheckBatch) (CheckAnswer, error)
	// Settle applies the next part of a shard's settlement stream, exactly once by position.
	Settle(ctx context.Context, b SettleBatch) (SettleAnswer, error)
	// Sync replaces the reservations a shard owns with its open orders (one chunk of a re-sync).
	Sync(ctx context.Context, b SyncBatch) (SyncAnswer, error)
	// Release frees reservations whose orders never reached the journal (ids not open are fine).
	Release(ctx context.Context, ids []uint64) error
}

// CheckBatch is one Check call.
type CheckBatch struct {
	Owner      string
	Session    uint64
	Generation uint64
	Checks     []RiskCheck
}

// RiskCheck is one order to vet.
type RiskCheck struct {
	Spec       *Spec
	Shard      uint32 // the shard whose journal will hold the order
	Account    string
	Side       book.Side
	Market     bool
	Price      int64 // ticks: the limit, or a market order's protection price
	Qty        int64 // lots
	ReduceOnly bool
	// Replaces is the reservation an amend's check replaces in the same step in risk (0: none).
	Replaces uint64
}

// CheckAnswer is risk's answer to a Check call.
type CheckAnswer struct {
	Decisions   []RiskDecision
	Incarnation uint64 // changes whenever risk restarts (and so lost its reservations)
}

// RiskDecision is the risk service's answer for one check.
type RiskDecision struct {
	Accepted      bool
	ReservationID uint64
	Reason        string // the risk service's reject reason when refused
}

// Stream names a shard's settlement stream: Epoch is new whenever the shard's journal starts over.
type Stream struct {
	Owner string
	Shard uint32
	Epoch uint64
}

// SettleBatch is the next part of a stream: every item with After < Seq <= Through.
type SettleBatch struct {
	Stream  Stream
	After   uint64
	Through uint64
	Items   []SettleItem
}

// SettleItem is a trade (both legs); or, when Release is set, the release of a reservation; or,
// when Shrink is set, Shrink lots freed of reservation ShrinkID (an amend took them off the order).
type SettleItem struct {
	Seq      uint64 // journal record that produced it
	Trade    Trade
	Release  uint64
	ShrinkID uint64
	Shrink   int64
	// liveOnly marks an item a replay of its record does not produce: the excess a fill freed
	// between an amend's check and its journal write. Recovery's re-sync trims it instead.
	liveOnly bool
	origin   traceRef // the trace of the command that produced it, in memory only (tracelinks.go)
}

// Trade is one fill, both legs: risk applies it whole or not at all, and charges the taker's fee
// at its own current rate.
type Trade struct {
	Spec      *Spec
	Price     int64
	Qty       int64
	TakerSide book.Side
	Buyer     Leg
	Seller    Leg
	Time      int64
}

// Leg is one side of a trade: the order's account and reservation.
type Leg struct {
	Account       string
	ReservationID uint64
}

// SettleAnswer reports where the stream stands in risk. Answering an empty part (a probe) it also
// carries the kill switches: accounts halted, or everyone.
type SettleAnswer struct {
	Watermark      uint64
	Incarnation    uint64
	HaltedAccounts []string
	AllHalted      bool
	// Reclaimed counts reservations of the shard's orders risk dropped to pay legs without a
	// reservation (orders checked before a risk restart and not yet re-synced): a re-sync restores
	// them, or cancels the orders it cannot cover.
	Reclaimed int
}

// SyncBatch is one chunk of a re-sync of a shard's reservations, as of risk's watermark.
type SyncBatch struct {
	Stream       Stream
	Watermark    uint64
	Session      uint64
	Generation   uint64 // reservations of an older session or of a generation <= this are replaced
	Reservations []Reservation
	Final        bool
}

// SyncAnswer reports one chunk.
type SyncAnswer struct {
	Uncovered   []uint64 // reservations risk could not cover: their orders must be cancelled
	Dropped     int
	Incarnation uint64
}

// Reservation is an open order's claim, for a re-sync.
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
