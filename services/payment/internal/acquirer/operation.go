// Package acquirer is the simulated card acquirer / bank: it decides authorizations, captures, voids,
// refunds and payouts like a real one would (captures within the authorization, refunds within the
// captures, declines by rule), remembers every outcome durably by (kind, key) so that a key never acts
// twice, and injects the faults tests need (latency, failures before acting, answers lost after
// acting). It knows nothing of gRPC: the API layer in grpcapi maps its errors.
package acquirer

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"maps"
	"slices"
	"time"
)

// Kind is what a key was used for; keys are scoped by kind.
type Kind string

const (
	Authorize Kind = "authorize"
	Capture   Kind = "capture"
	Void      Kind = "void"
	Refund    Kind = "refund"
	Payout    Kind = "payout"
)

// Kinds lists every acting kind, in API order.
var Kinds = []Kind{Authorize, Capture, Void, Refund, Payout}

// Valid reports whether k is one of Kinds.
func (k Kind) Valid() bool { return slices.Contains(Kinds, k) }

// Outcome is the business decision on an operation.
type Outcome int

const (
	Approved Outcome = iota + 1
	Declined
)

// Decline codes answered by the acquirer's own rules (decline rules may answer any code).
const (
	CodeDoNotHonor            = "do_not_honor"
	CodeAuthorizationNotFound = "authorization_not_found"
	CodeAuthorizationDeclined = "authorization_declined"
	CodeCurrencyMismatch      = "currency_mismatch"
	CodeExceedsAuthorization  = "amount_exceeds_authorization"
	CodeExceedsCaptured       = "amount_exceeds_captured"
	CodeAlreadyCaptured       = "already_captured"
	CodeAlreadyVoided         = "already_voided"
)

// Request is one acting call. Which fields matter depends on Kind: Authorize uses Method, Token,
// Capture and Descriptor; Capture, Void and Refund name their AuthorizeKey; Payout a Destination.
// Void carries no amount.
type Request struct {
	Kind         Kind
	Key          string
	Amount       int64
	Currency     string
	Method       string
	Token        string
	Capture      bool
	Descriptor   string
	AuthorizeKey string
	Destination  string
	Metadata     map[string]string
}

// Fingerprint identifies the parameters of a request: a key reused with another fingerprint is a
// conflict, not a replay.
func (r Request) Fingerprint() string {
	h := sha256.New()
	field := func(s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	var amount [8]byte
	binary.BigEndian.PutUint64(amount[:], uint64(r.Amount))
	h.Write(amount[:])
	capture := "0"
	if r.Capture {
		capture = "1"
	}
	for _, s := range []string{string(r.Kind), r.Currency, r.Method, r.Token, capture, r.Descriptor, r.AuthorizeKey, r.Destination} {
		field(s)
	}
	for _, k := range slices.Sorted(maps.Keys(r.Metadata)) {
		field(k)
		field(r.Metadata[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Operation is an acted-on request and its outcome, as stored and as answered to every call with its
// key.
type Operation struct {
	Seq          uint64 // position in the log, from 1
	Kind         Kind
	Key          string
	Fingerprint  string
	Outcome      Outcome
	DeclineCode  string
	Message      string
	Ref          string // the acquirer's id, e.g. auth_12
	Amount       int64
	Currency     string
	Method       string
	Token        string
	Capture      bool
	AuthorizeKey string
	Destination  string
	Metadata     map[string]string
	ActedAt      time.Time
}

// NotActedError says the call was refused before anything was decided or stored: the caller may
// safely go elsewhere. Err says why (an injected failure, a deadline that passed, a full log).
type NotActedError struct{ Err error }

func (e *NotActedError) Error() string { return "not acted on: " + e.Err.Error() }
func (e *NotActedError) Unwrap() error { return e.Err }

// ErrAnswerLost is returned, by injection, after the outcome is durable: the API layer answers as if
// the connection had dropped after the request was sent.
var ErrAnswerLost = errors.New("answer lost after acting (injected)")
