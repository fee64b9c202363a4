// Package idempotency implements Stripe's idempotency-key semantics over a durable record per
// (caller, key): the first request that began executing owns the key; a repeat with the same
// parameters gets that request's result replayed (success or error); a repeat with other parameters
// is refused naming idempotency_key; a repeat while the first is still executing is refused with
// ErrInUse (retryable). Records are claimed through a unique constraint in the database, never an
// in-memory lock, so replicas on one database agree. Validation failures never reach a record.
package idempotency

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// DefaultRetention is how long a record is kept (Stripe prunes keys after at least 24 hours).
const DefaultRetention = 24 * time.Hour

// ErrInUse: another request with the same key is executing. The API answers Aborted
// "idempotency_key_in_use"; the client retries later and then gets the replay.
var ErrInUse = errors.New("idempotency_key_in_use: a request with this idempotency_key is still being processed; retry later")

// State of a record.
type State string

const (
	// InFlight: the owning request began executing and has no result yet (or its process died; the
	// janitor completes the record once it settles the object).
	InFlight State = "in_flight"
	// Done: Response (or the error) is what every repeat gets.
	Done State = "done"
)

// Record is the durable state of one key.
type Record struct {
	Caller      string // the caller's identity ("account:alice", "admin:ops")
	Key         string
	Method      string // the operation ("CreatePayment"): the same key on another one is a mismatch
	Fingerprint string // of the request's parameters
	State       State
	ObjectID    string // the payment, refund, payout or endpoint the request created or acted on
	Response    []byte // JSON of the result object, when State is Done and the result was a success
	ErrKind     errs.Kind
	ErrMsg      string // non-empty when the first result was an error
	CreatedAt   time.Time
}

// Fingerprint hashes a request's parameters (any JSON-encodable value; maps encode sorted, so equal
// requests hash equally).
func Fingerprint(params any) string {
	b, err := json.Marshal(params)
	if err != nil {
		// Only types the flows define reach here; they all encode.
		panic("idempotency: fingerprint: " + err.Error())
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// Expired reports whether a record has outlived the retention and may be replaced by a new request.
func (r Record) Expired(now time.Time, retention time.Duration) bool {
	return r.State == Done && now.Sub(r.CreatedAt) >= retention
}

// Check decides what a repeat request gets from an existing, unexpired record: a mismatch error, ErrInUse,
// the replayed error, or nil (replay r.Response).
func (r Record) Check(method, fingerprint string) error {
	if r.Method != method || r.Fingerprint != fingerprint {
		return errs.Invalid("idempotency_key", "keys are for one request: this key was used with other parameters (or another operation) in the last retention period")
	}
	if r.State != Done {
		return ErrInUse
	}
	if r.ErrMsg != "" {
		return &errs.Error{Kind: r.ErrKind, Msg: r.ErrMsg}
	}
	return nil
}
