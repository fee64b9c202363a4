package stripeproc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"time"

	"github.com/stripe/stripe-go/v82"

	"github.com/bourse-dev/bourse/services/payment/internal/processor"
)

// sendTracker tells whether a connection was ever handed to a request: until then not one byte of
// it can have been written, so a failure is provably NotReached.
type sendTracker struct{ gotConn atomic.Bool }

// tracked returns ctx with a trace that marks the tracker when the request gets a connection.
func tracked(ctx context.Context) (context.Context, *sendTracker) {
	st := &sendTracker{}
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { st.gotConn.Store(true) },
	}), st
}

// failure is the Result of a call that did not come back with a Stripe object.
func failure(err error, st *sendTracker) processor.Result {
	if se, ok := errors.AsType[*stripe.Error](err); ok {
		return fromStripeError(se)
	}
	if !st.gotConn.Load() {
		return processor.Result{Status: processor.NotReached, Message: "stripe not reached: " + err.Error()}
	}
	return processor.Result{Status: processor.Unknown, Message: "stripe answer not received: " + err.Error()}
}

// fromStripeError maps an error answer of Stripe's (see the package comment for why each way).
func fromStripeError(se *stripe.Error) processor.Result {
	msg := fmt.Sprintf("stripe %d %s", se.HTTPStatusCode, se.Type)
	if se.Code != "" {
		msg += " " + string(se.Code)
	}
	if se.Msg != "" {
		msg += ": " + se.Msg
	}
	if se.RequestID != "" {
		msg += " (request " + se.RequestID + ")"
	}
	res := processor.Result{Message: msg}
	if se.PaymentIntent != nil {
		res.ProcessorRef = se.PaymentIntent.ID
	}
	status := se.HTTPStatusCode
	switch {
	case se.Type == stripe.ErrorTypeIdempotency || status == http.StatusConflict:
		res.Status = processor.Unknown
	case se.Type == stripe.ErrorTypeAPI || status >= 500:
		res.Status = processor.Unknown
	case status == http.StatusPaymentRequired || se.Type == stripe.ErrorTypeCard:
		res.Status = processor.Declined
		res.DeclineCode = cmp.Or(string(se.DeclineCode), string(se.Code), "card_declined")
	case status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusTooManyRequests:
		res.Status = processor.NotReached
	case status == http.StatusBadRequest || status == http.StatusNotFound:
		res.Status = processor.Declined
		res.DeclineCode = cmp.Or(string(se.Code), "invalid_request")
	default:
		res.Status = processor.Unknown
	}
	return res
}

func money(amount int64, c stripe.Currency) processor.Money {
	code := strings.ToUpper(string(c))
	return processor.Money{Amount: fromStripe(amount, code), Currency: code}
}

func unix(sec int64) time.Time {
	if sec <= 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0).UTC()
}

// fromAuthorization maps a PaymentIntent after create+confirm, or as found by a Lookup of its
// authorization.
func fromAuthorization(pi *stripe.PaymentIntent) processor.Result {
	res := processor.Result{ProcessorRef: pi.ID, Money: money(pi.Amount, pi.Currency), At: unix(pi.Created),
		Message: "payment_intent " + string(pi.Status)}
	switch pi.Status {
	case stripe.PaymentIntentStatusRequiresCapture:
		res.Status = processor.Approved
		if pi.AmountCapturable > 0 {
			res.Money.Amount = pi.AmountCapturable
		}
	case stripe.PaymentIntentStatusSucceeded:
		res.Status = processor.Approved
		if pi.AmountReceived > 0 {
			res.Money.Amount = pi.AmountReceived
		}
	case stripe.PaymentIntentStatusRequiresPaymentMethod, stripe.PaymentIntentStatusRequiresAction,
		stripe.PaymentIntentStatusCanceled:
		// requires_payment_method after a confirm is a failed attempt; requires_action needs the
		// customer, who is not there (error_on_requires_action should have made it a 402).
		res.Status = processor.Declined
		res.DeclineCode = intentDeclineCode(pi)
	default:
		// processing (the outcome comes later), requires_confirmation (never confirmed): ask again.
		res.Status = processor.Unknown
	}
	return res
}

func intentDeclineCode(pi *stripe.PaymentIntent) string {
	if e := pi.LastPaymentError; e != nil && (e.DeclineCode != "" || e.Code != "") {
		return cmp.Or(string(e.DeclineCode), string(e.Code))
	}
	switch pi.Status {
	case stripe.PaymentIntentStatusRequiresAction:
		return "authentication_required"
	case stripe.PaymentIntentStatusCanceled:
		return "canceled"
	}
	return "payment_failed"
}

// fromCapture maps the PaymentIntent a capture answered (or a Lookup of the capture found).
func fromCapture(pi *stripe.PaymentIntent, lookup bool) processor.Result {
	res := processor.Result{ProcessorRef: pi.ID, Money: money(pi.AmountReceived, pi.Currency)}
	return fromIntentOp(pi, res, stripe.PaymentIntentStatusSucceeded, stripe.PaymentIntentStatusCanceled, "authorization_voided", lookup)
}

// fromVoid maps the PaymentIntent a cancel answered (or a Lookup of the void found).
func fromVoid(pi *stripe.PaymentIntent, lookup bool) processor.Result {
	res := processor.Result{ProcessorRef: pi.ID, Money: money(pi.Amount, pi.Currency), At: unix(pi.CanceledAt)}
	return fromIntentOp(pi, res, stripe.PaymentIntentStatusCanceled, stripe.PaymentIntentStatusSucceeded, "already_captured", lookup)
}

// fromIntentOp maps the PaymentIntent of a capture or a cancel of an authorization: done is the
// status the operation leads to (Approved), instead the one that rules it out (Declined with code).
// Still requires_capture, the operation did not take effect: after a call that answered 200 that
// is not an answer (Unknown); for a Lookup it is NotFound.
func fromIntentOp(pi *stripe.PaymentIntent, res processor.Result, done, instead stripe.PaymentIntentStatus, code string, lookup bool) processor.Result {
	res.Message = "payment_intent " + string(pi.Status)
	switch pi.Status {
	case done:
		res.Status = processor.Approved
	case instead:
		res.Status, res.DeclineCode = processor.Declined, code
	case stripe.PaymentIntentStatusRequiresCapture:
		res.Status = processor.Unknown
		if lookup {
			res.Status = processor.NotFound
		}
	default:
		res.Status = processor.Unknown
	}
	return res
}

// fromRefund maps a refund: pending is Approved (Stripe accepted it; a later failure shows in a
// Lookup), failed and canceled are Declined.
func fromRefund(r *stripe.Refund) processor.Result {
	res := processor.Result{ProcessorRef: r.ID, Money: money(r.Amount, r.Currency), At: unix(r.Created),
		Message: "refund " + string(r.Status)}
	switch r.Status {
	case stripe.RefundStatusSucceeded, stripe.RefundStatusPending:
		res.Status = processor.Approved
	case stripe.RefundStatusFailed, stripe.RefundStatusCanceled:
		res.Status = processor.Declined
		res.DeclineCode = cmp.Or(string(r.FailureReason), "refund_"+string(r.Status))
	default:
		// requires_action: Stripe needs something from the customer before it refunds.
		res.Status = processor.Unknown
	}
	return res
}

// fromPayout maps a payout: pending and in_transit are Approved (Stripe took it on; a bank's later
// refusal shows in a Lookup as Declined), failed and canceled are Declined.
func fromPayout(po *stripe.Payout) processor.Result {
	res := processor.Result{ProcessorRef: po.ID, Money: money(po.Amount, po.Currency), At: unix(po.Created),
		Message: "payout " + string(po.Status)}
	switch po.Status {
	case stripe.PayoutStatusPaid, stripe.PayoutStatusPending, stripe.PayoutStatusInTransit:
		res.Status = processor.Approved
	case stripe.PayoutStatusFailed, stripe.PayoutStatusCanceled:
		res.Status = processor.Declined
		res.DeclineCode = cmp.Or(string(po.FailureCode), "payout_"+string(po.Status))
	default:
		res.Status = processor.Unknown
	}
	return res
}
