package domain

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// Method is how a customer pays.
type Method string

const (
	MethodCard         Method = "card"
	MethodBankTransfer Method = "bank_transfer"
)

// CaptureMethod says whether an authorization is captured at once.
type CaptureMethod string

const (
	CaptureAutomatic CaptureMethod = "automatic"
	CaptureManual    CaptureMethod = "manual"
)

// DeclineReason is why a payment or payout did not go through, in bourse's own terms.
type DeclineReason string

const (
	DeclineNone                 DeclineReason = ""
	DeclineCardDeclined         DeclineReason = "card_declined"
	DeclineInsufficientFunds    DeclineReason = "insufficient_funds"
	DeclineFraudSuspected       DeclineReason = "fraud_suspected"
	DeclineExpiredCard          DeclineReason = "expired_card"
	DeclineProcessorUnavailable DeclineReason = "processor_unavailable"
	DeclineDoNotHonor           DeclineReason = "do_not_honor"
	DeclineOther                DeclineReason = "other"
	DeclineRiskRejected         DeclineReason = "risk_rejected"
	// DeclineExpired: a manual-capture payment was not captured within the capture window; its
	// authorization was voided and the payment canceled.
	DeclineExpired DeclineReason = "expired"
)

// ReasonForCode maps a processor's decline code to a reason.
func ReasonForCode(code string) DeclineReason {
	switch code {
	case "card_declined", "generic_decline":
		return DeclineCardDeclined
	case "insufficient_funds":
		return DeclineInsufficientFunds
	case "expired_card":
		return DeclineExpiredCard
	case "do_not_honor":
		return DeclineDoNotHonor
	case "fraudulent", "fraud_suspected":
		return DeclineFraudSuspected
	}
	return DeclineOther
}

// Payment is a deposit into a trading account.
type Payment struct {
	ID             string            `json:"id"`
	Caller         string            `json:"caller"`
	AccountID      string            `json:"account_id"`
	Amount         Money             `json:"amount"`
	Method         Method            `json:"method"`
	PaymentToken   string            `json:"-"` // never serialised into replays or events
	CaptureMethod  CaptureMethod     `json:"capture_method"`
	Status         PaymentStatus     `json:"status"`
	Captured       int64             `json:"captured"`
	Refunded       int64             `json:"refunded"`
	RefundReserved int64             `json:"refund_reserved"` // refunds not failed, succeeded included
	DeclineReason  DeclineReason     `json:"decline_reason,omitempty"`
	DeclineCode    string            `json:"decline_code,omitempty"`
	FraudScore     float64           `json:"fraud_score,omitempty"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	RiskCredited   bool              `json:"risk_credited"`
	Attempts       []Attempt         `json:"attempts,omitempty"`
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
}

// Op is the processor operation an attempt has in flight (or last had).
type Op string

const (
	OpNone      Op = ""
	OpAuthorize Op = "authorize"
	OpCapture   Op = "capture"
	OpVoid      Op = "void"
)

// Attempt is one try of a payment at one processor. Its id is the processor's idempotency key.
type Attempt struct {
	ID           string        `json:"id"`
	PaymentID    string        `json:"payment_id"`
	Processor    string        `json:"processor"`
	Status       AttemptStatus `json:"status"`
	PendingOp    Op            `json:"pending_op,omitempty"` // an operation whose outcome is not known yet
	ProcessorRef string        `json:"processor_ref,omitempty"`
	DeclineCode  string        `json:"decline_code,omitempty"`
	Lookups      int           `json:"lookups"`
	NextLookupAt time.Time     `json:"next_lookup_at"`
	CreatedAt    time.Time     `json:"created_at"`
	UpdatedAt    time.Time     `json:"updated_at"`
}

// OpKey is the processor key of op for this attempt.
func (a Attempt) OpKey(op Op) string {
	if op == OpAuthorize {
		return a.ID
	}
	return a.ID + ":" + string(op)
}

// Refund returns part of a captured payment.
type Refund struct {
	ID           string       `json:"id"`
	PaymentID    string       `json:"payment_id"`
	AccountID    string       `json:"account_id"`
	Processor    string       `json:"processor"`
	AttemptID    string       `json:"attempt_id"` // the authorization refunded
	Amount       Money        `json:"amount"`
	Status       RefundStatus `json:"status"`
	Reason       string       `json:"reason,omitempty"`
	ProcessorRef string       `json:"processor_ref,omitempty"`
	DeclineCode  string       `json:"decline_code,omitempty"`
	Lookups      int          `json:"lookups"`
	NextStepAt   time.Time    `json:"next_step_at"`
	CreatedAt    time.Time    `json:"created_at"`
	UpdatedAt    time.Time    `json:"updated_at"`
}

// Payout is a withdrawal from a trading account.
type Payout struct {
	ID            string            `json:"id"`
	Caller        string            `json:"caller"`
	AccountID     string            `json:"account_id"`
	Amount        Money             `json:"amount"`
	Destination   string            `json:"destination"`
	Processor     string            `json:"processor,omitempty"`
	Status        PayoutStatus      `json:"status"`
	ProcessorRef  string            `json:"processor_ref,omitempty"`
	DeclineReason DeclineReason     `json:"decline_reason,omitempty"`
	DeclineCode   string            `json:"decline_code,omitempty"`
	Metadata      map[string]string `json:"metadata,omitempty"`
	Lookups       int               `json:"lookups"`
	NextStepAt    time.Time         `json:"next_step_at"`
	CreatedAt     time.Time         `json:"created_at"`
	UpdatedAt     time.Time         `json:"updated_at"`
}

// Event is one entry of the event log; its id is stable across deliveries.
type Event struct {
	ID        string    `json:"id"`
	Seq       int64     `json:"seq"`
	Type      string    `json:"type"`
	AccountID string    `json:"account_id"`
	ObjectID  string    `json:"object_id"`
	Data      []byte    `json:"data"`
	CreatedAt time.Time `json:"created_at"`
}

// WebhookEndpoint receives an account's events.
type WebhookEndpoint struct {
	ID         string    `json:"id"`
	AccountID  string    `json:"account_id"`
	URL        string    `json:"url"`
	EventTypes []string  `json:"event_types,omitempty"`
	Secret     string    `json:"secret"`
	CreatedAt  time.Time `json:"created_at"`
}

// idEncoding is base32 over the ids' usual 32 characters, listed in byte order so that the text of
// an id sorts as its bytes do.
var idEncoding = base32.NewEncoding("234567abcdefghijklmnopqrstuvwxyz").WithPadding(base32.NoPadding)

// NewID returns an id with a type prefix ("pay_...", "att_..."): 15 bytes as 24 base32 characters,
// the first 6 the creation time in milliseconds (big-endian), the other 9 (72 bits) random. Ids of
// one table then sort by creation time, so a batch of inserts lands at the right edge of each
// B-tree keyed by id instead of on a hundred scattered pages; the random part keeps them
// unguessable and unique.
func NewID(prefix string) string {
	return newID(prefix, time.Now())
}

func newID(prefix string, now time.Time) string {
	var b [15]byte
	ms := uint64(now.UnixMilli())
	for i := range 6 {
		b[i] = byte(ms >> (8 * (5 - i)))
	}
	_, _ = rand.Read(b[6:])
	return prefix + "_" + idEncoding.EncodeToString(b[:])
}

// Limits on client-supplied strings.
const (
	MaxIdempotencyKey = 255
	MaxAccountID      = 64
	MaxToken          = 255
	MaxMetadataKeys   = 20
	MaxMetadataKey    = 40
	MaxMetadataValue  = 500
	MaxReason         = 500
	MaxURL            = 2048
	MaxID             = 64
)

// ValidateText checks a required or optional free string: valid UTF-8, no control characters, at
// most max bytes.
func ValidateText(field, s string, required bool, max int) error {
	switch {
	case s == "" && required:
		return errs.Invalid(field, "required")
	case len(s) > max:
		return errs.Invalid(field, "%d bytes exceed the maximum of %d", len(s), max)
	case !utf8.ValidString(s):
		return errs.Invalid(field, "not valid UTF-8")
	case strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return errs.Invalid(field, "contains control characters")
	}
	return nil
}

// ValidateIdempotencyKey checks a creating call's key: required, at most 255 bytes.
func ValidateIdempotencyKey(key string) error {
	return ValidateText("idempotency_key", key, true, MaxIdempotencyKey)
}

// ValidateMetadata checks a metadata map against Stripe's limits.
func ValidateMetadata(field string, md map[string]string) error {
	if len(md) > MaxMetadataKeys {
		return errs.Invalid(field, "%d keys exceed the maximum of %d", len(md), MaxMetadataKeys)
	}
	for k, v := range md {
		if err := ValidateText(field+" key", k, true, MaxMetadataKey); err != nil {
			return err
		}
		if err := ValidateText(field+"["+k+"]", v, false, MaxMetadataValue); err != nil {
			return err
		}
	}
	return nil
}
