// Package processor is the one interface every payment processor connector (the simulated acquirer,
// Stripe, an in-process test processor) implements, and the vocabulary of outcomes the payment flows
// rely on to decide between success, decline, fallback and UNKNOWN.
//
// The contract every implementation keeps:
//   - Every call carries a Key. The processor treats it as its idempotency key: the same Key with the
//     same operation never acts twice, and answers with the outcome of the first call.
//   - Authorize uses the attempt id as Key; Capture, Void and Refund use their own ids (the payment
//     flow derives them, e.g. attempt id + ":capture"); Payout uses the payout id.
//   - The returned Result.Status is the only way to report a business outcome. An error is never
//     returned together with Approved or Declined.
//   - NotReached is returned only when the request provably did not reach the processor (connection
//     refused before any byte was written, circuit open, the processor said it did nothing). Any doubt
//     (a timeout, a reset after the request was sent, an unparseable answer) is Unknown.
package processor

import (
	"context"
	"time"
)

// Status is the outcome of one processor call.
type Status int

const (
	// Unknown: the request may or may not have been acted on. Only Lookup settles it.
	Unknown Status = iota
	// Approved: the processor did it (authorized, captured, voided, refunded, paid out).
	Approved
	// Declined: a business refusal (insufficient funds, card declined, fraud at the processor). Final:
	// never retried on another processor.
	Declined
	// NotReached: the request provably never reached the processor; the caller may try the next one.
	NotReached
	// NotFound: Lookup only: the processor has no record of the Key, so the original call never took
	// effect (and, once the call's own deadline has passed, never will).
	NotFound
)

func (s Status) String() string {
	switch s {
	case Approved:
		return "approved"
	case Declined:
		return "declined"
	case NotReached:
		return "not_reached"
	case NotFound:
		return "not_found"
	default:
		return "unknown"
	}
}

// Operation names what a Key was used for, so Lookup can be asked about any of them.
type Operation string

const (
	OpAuthorize Operation = "authorize"
	OpCapture   Operation = "capture"
	OpVoid      Operation = "void"
	OpRefund    Operation = "refund"
	OpPayout    Operation = "payout"
)

// Money is an amount in integer minor units of an ISO-4217 currency (upper case, e.g. "USD").
type Money struct {
	Amount   int64
	Currency string
}

// AuthorizeRequest asks for an authorization (and, with Capture set, an immediate capture).
type AuthorizeRequest struct {
	Key            string // the attempt id
	Money          Money
	Method         string // "card", "bank_transfer", ...
	PaymentToken   string // an opaque token; card data never reaches bourse
	Capture        bool   // capture_method automatic: authorize and capture in one call
	StatementDescr string
	Metadata       map[string]string // payment id, account id; never card data
}

// CaptureRequest captures (part of) an authorization.
type CaptureRequest struct {
	Key          string // e.g. attempt id + ":capture"
	AuthorizeKey string // the Key of the authorization
	Money        Money
}

// VoidRequest cancels an uncaptured authorization.
type VoidRequest struct {
	Key          string
	AuthorizeKey string
}

// RefundRequest returns (part of) a captured amount.
type RefundRequest struct {
	Key          string // the refund id
	AuthorizeKey string
	Money        Money
}

// PayoutRequest sends money out to a destination (a bank account token).
type PayoutRequest struct {
	Key         string // the payout id
	Money       Money
	Destination string
	Metadata    map[string]string
}

// Result is what a processor answered (or what could be inferred when it did not answer).
type Result struct {
	Status       Status
	ProcessorRef string // the processor's own id of the operation (charge id, refund id, ...)
	DeclineCode  string // set with Declined, e.g. "insufficient_funds", "card_declined"
	Message      string // human-readable detail, never card data
	// Money actually processed; equals the request's unless the processor reports otherwise
	// (a partial authorization, say).
	Money Money
	At    time.Time // when the processor acted, when it says so
}

// Processor is one payment processor connector. Implementations are safe for concurrent use.
type Processor interface {
	// Name is the routing name ("acquirer", "stripe", ...).
	Name() string
	Authorize(ctx context.Context, req AuthorizeRequest) (Result, error)
	Capture(ctx context.Context, req CaptureRequest) (Result, error)
	Void(ctx context.Context, req VoidRequest) (Result, error)
	Refund(ctx context.Context, req RefundRequest) (Result, error)
	Payout(ctx context.Context, req PayoutRequest) (Result, error)
	// Lookup reports what the processor did with Key for op: Approved, Declined, NotFound (it never
	// saw it), or Unknown (it could not be asked; try later), with a nil error in all these cases; an
	// error only for a programming mistake (an unknown op).
	Lookup(ctx context.Context, op Operation, key string) (Result, error)
}
