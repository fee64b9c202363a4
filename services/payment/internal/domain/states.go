package domain

import (
	"github.com/bourse-dev/bourse/pkg/errs"
)

// PaymentStatus is where a payment is in its life.
type PaymentStatus string

const (
	PaymentRequiresConfirmation PaymentStatus = "requires_confirmation"
	PaymentProcessing           PaymentStatus = "processing"
	PaymentRequiresCapture      PaymentStatus = "requires_capture"
	PaymentSucceeded            PaymentStatus = "succeeded"
	PaymentFailed               PaymentStatus = "failed"
	PaymentCanceled             PaymentStatus = "canceled"
	PaymentPartiallyRefunded    PaymentStatus = "partially_refunded"
	PaymentRefunded             PaymentStatus = "refunded"
)

// PaymentStatuses lists every payment status.
var PaymentStatuses = []PaymentStatus{PaymentRequiresConfirmation, PaymentProcessing, PaymentRequiresCapture,
	PaymentSucceeded, PaymentFailed, PaymentCanceled, PaymentPartiallyRefunded, PaymentRefunded}

// paymentTransitions: processing is also the status while a capture or a void is at the processor
// (requires_capture → processing → succeeded | canceled), so a second capture cannot start meanwhile.
// A refund moves succeeded to partially_refunded or refunded; refunds of a partially refunded payment
// may keep it there.
var paymentTransitions = map[PaymentStatus][]PaymentStatus{
	PaymentRequiresConfirmation: {PaymentProcessing, PaymentCanceled},
	PaymentProcessing:           {PaymentRequiresCapture, PaymentSucceeded, PaymentFailed, PaymentCanceled},
	PaymentRequiresCapture:      {PaymentProcessing, PaymentCanceled, PaymentFailed},
	PaymentSucceeded:            {PaymentPartiallyRefunded, PaymentRefunded},
	PaymentPartiallyRefunded:    {PaymentPartiallyRefunded, PaymentRefunded},
}

// AttemptStatus is where one processor attempt of a payment is.
type AttemptStatus string

const (
	AttemptPending    AttemptStatus = "pending"
	AttemptAuthorized AttemptStatus = "authorized"
	AttemptCaptured   AttemptStatus = "captured"
	AttemptFailed     AttemptStatus = "failed"
	AttemptUnknown    AttemptStatus = "unknown"
	AttemptVoided     AttemptStatus = "voided"
	AttemptNotReached AttemptStatus = "not_reached"
)

// AttemptStatuses lists every attempt status.
var AttemptStatuses = []AttemptStatus{AttemptPending, AttemptAuthorized, AttemptCaptured, AttemptFailed,
	AttemptUnknown, AttemptVoided, AttemptNotReached}

// attemptTransitions: unknown is left only by a lookup's verdict; not_reached is final for the
// attempt (the payment moves on to the next processor with a new attempt).
var attemptTransitions = map[AttemptStatus][]AttemptStatus{
	AttemptPending:    {AttemptAuthorized, AttemptCaptured, AttemptFailed, AttemptUnknown, AttemptNotReached},
	AttemptUnknown:    {AttemptAuthorized, AttemptCaptured, AttemptFailed},
	AttemptAuthorized: {AttemptCaptured, AttemptVoided, AttemptFailed},
}

// RefundStatus is where a refund is. The customer's trading balance is debited in risk before the
// processor is asked (processing), and credited back if the processor refuses (reversing → failed).
type RefundStatus string

const (
	RefundPending    RefundStatus = "pending"
	RefundProcessing RefundStatus = "processing"
	RefundUnknown    RefundStatus = "unknown"
	RefundSucceeded  RefundStatus = "succeeded"
	RefundReversing  RefundStatus = "reversing"
	RefundFailed     RefundStatus = "failed"
)

// RefundStatuses lists every refund status.
var RefundStatuses = []RefundStatus{RefundPending, RefundProcessing, RefundUnknown, RefundSucceeded, RefundReversing, RefundFailed}

var refundTransitions = map[RefundStatus][]RefundStatus{
	RefundPending:    {RefundProcessing, RefundFailed},
	RefundProcessing: {RefundSucceeded, RefundUnknown, RefundReversing},
	RefundUnknown:    {RefundSucceeded, RefundReversing},
	RefundReversing:  {RefundFailed},
}

// PayoutStatus is where a payout (withdrawal) is: risk is debited first (pending → processing), then
// the processor pays out; a payout that fails for good is credited back (reversing → failed).
type PayoutStatus string

const (
	PayoutPending    PayoutStatus = "pending"
	PayoutProcessing PayoutStatus = "processing"
	PayoutSucceeded  PayoutStatus = "succeeded"
	PayoutReversing  PayoutStatus = "reversing"
	PayoutFailed     PayoutStatus = "failed"
)

// PayoutStatuses lists every payout status.
var PayoutStatuses = []PayoutStatus{PayoutPending, PayoutProcessing, PayoutSucceeded, PayoutReversing, PayoutFailed}

var payoutTransitions = map[PayoutStatus][]PayoutStatus{
	PayoutPending:    {PayoutProcessing, PayoutFailed},
	PayoutProcessing: {PayoutSucceeded, PayoutReversing},
	PayoutReversing:  {PayoutFailed},
}

func check[S ~string](what string, table map[S][]S, from, to S) error {
	for _, s := range table[from] {
		if s == to {
			return nil
		}
	}
	return errs.New(errs.KindFailedPrecondition, "%s cannot go from %s to %s", what, from, to)
}

// PaymentTransition reports whether a payment may move from one status to another (FailedPrecondition
// if not). Every status change of a payment is checked here.
func PaymentTransition(from, to PaymentStatus) error {
	return check("payment", paymentTransitions, from, to)
}

// AttemptTransition is PaymentTransition for attempts.
func AttemptTransition(from, to AttemptStatus) error {
	return check("attempt", attemptTransitions, from, to)
}

// RefundTransition is PaymentTransition for refunds.
func RefundTransition(from, to RefundStatus) error {
	return check("refund", refundTransitions, from, to)
}

// PayoutTransition is PaymentTransition for payouts.
func PayoutTransition(from, to PayoutStatus) error {
	return check("payout", payoutTransitions, from, to)
}

// Terminal reports whether no transition leaves s.
func (s PaymentStatus) Terminal() bool { return len(paymentTransitions[s]) == 0 }
