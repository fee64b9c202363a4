package grpcapi

import (
	"slices"
	"strings"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
	paymentv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/payment/v1"
	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/flows"
	"github.com/bourse-dev/bourse/services/payment/internal/store"
	"github.com/bourse-dev/bourse/services/payment/internal/webhook"
)

// Request validation: every field is checked before anything is written or any record is claimed,
// so a refused request leaves no trace (and saves no idempotent result).

func validateAccount(account string) error {
	if err := domain.ValidateText("account_id", account, true, domain.MaxAccountID); err != nil {
		return err
	}
	if strings.ContainsAny(account, " :/") {
		return errs.Invalid("account_id", "must not contain spaces, ':' or '/'")
	}
	return nil
}

func validateID(field, id, prefix string) error {
	if err := domain.ValidateText(field, id, true, domain.MaxID); err != nil {
		return err
	}
	if !strings.HasPrefix(id, prefix) {
		return errs.Invalid(field, "must start with %q", prefix)
	}
	return nil
}

func validateMoney(field string, m *paymentv1.Money) (domain.Money, error) {
	if m == nil {
		return domain.Money{}, errs.Invalid(field, "required")
	}
	out := domain.Money{Amount: m.GetAmount(), Currency: m.GetCurrency()}
	if err := domain.ValidateMoney(field, out); err != nil {
		return out, err
	}
	if m.Exponent != nil {
		if exp, _ := domain.Exponent(out.Currency); int32(exp) != m.GetExponent() {
			return out, errs.Invalid(field+".exponent", "%s has %d decimals, not %d", out.Currency, exp, m.GetExponent())
		}
	}
	return out, nil
}

func validateCreatePayment(req *paymentv1.CreatePaymentRequest) (flows.PaymentInput, error) {
	var in flows.PaymentInput
	if err := validateAccount(req.GetAccountId()); err != nil {
		return in, err
	}
	m, err := validateMoney("amount", req.GetAmount())
	if err != nil {
		return in, err
	}
	method, ok := methods[req.GetMethod()]
	if !ok {
		return in, errs.Invalid("method", "%v is not a supported payment method", req.GetMethod())
	}
	if err := domain.ValidateText("payment_token", req.GetPaymentToken(), true, domain.MaxToken); err != nil {
		return in, err
	}
	capture := domain.CaptureAutomatic
	switch req.GetCaptureMethod() {
	case paymentv1.CaptureMethod_CAPTURE_METHOD_UNSPECIFIED, paymentv1.CaptureMethod_CAPTURE_METHOD_AUTOMATIC:
	case paymentv1.CaptureMethod_CAPTURE_METHOD_MANUAL:
		capture = domain.CaptureManual
	default:
		return in, errs.Invalid("capture_method", "%v is not a capture method", req.GetCaptureMethod())
	}
	if err := domain.ValidateIdempotencyKey(req.GetIdempotencyKey()); err != nil {
		return in, err
	}
	if err := domain.ValidateMetadata("metadata", req.GetMetadata()); err != nil {
		return in, err
	}
	return flows.PaymentInput{AccountID: req.GetAccountId(), Amount: m, Method: method, PaymentToken: req.GetPaymentToken(),
		CaptureMethod: capture, Metadata: req.GetMetadata()}, nil
}

func validateCreatePayout(req *paymentv1.CreatePayoutRequest) (flows.PayoutInput, error) {
	var in flows.PayoutInput
	if err := validateAccount(req.GetAccountId()); err != nil {
		return in, err
	}
	m, err := validateMoney("amount", req.GetAmount())
	if err != nil {
		return in, err
	}
	if err := domain.ValidateText("destination", req.GetDestination(), true, domain.MaxToken); err != nil {
		return in, err
	}
	if err := domain.ValidateIdempotencyKey(req.GetIdempotencyKey()); err != nil {
		return in, err
	}
	if err := domain.ValidateMetadata("metadata", req.GetMetadata()); err != nil {
		return in, err
	}
	return flows.PayoutInput{AccountID: req.GetAccountId(), Amount: m, Destination: req.GetDestination(), Metadata: req.GetMetadata()}, nil
}

func validateListPayments(req *paymentv1.ListPaymentsRequest) (store.PaymentFilter, error) {
	var f store.PaymentFilter
	size, err := pageSize("page_size", req.GetPageSize(), 20, 100)
	if err != nil {
		return f, err
	}
	f.Limit = size
	if req.GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_UNSPECIFIED {
		st, ok := paymentStatusOf(req.GetStatus())
		if !ok {
			return f, errs.Invalid("status", "%v is not a payment status", req.GetStatus())
		}
		f.Status = st
	}
	if t := req.GetCreatedAfter(); t != nil {
		if err := t.CheckValid(); err != nil {
			return f, errs.Invalid("created_after", "%v", err)
		}
		f.CreatedAfter = t.AsTime()
	}
	if t := req.GetCreatedBefore(); t != nil {
		if err := t.CheckValid(); err != nil {
			return f, errs.Invalid("created_before", "%v", err)
		}
		f.CreatedBefore = t.AsTime()
	}
	if !f.CreatedAfter.IsZero() && !f.CreatedBefore.IsZero() && !f.CreatedAfter.Before(f.CreatedBefore) {
		return f, errs.Invalid("created_before", "must be after created_after")
	}
	if tok := req.GetPageToken(); tok != "" {
		if len(tok) > 200 {
			return f, errs.Invalid("page_token", "not a token this service issued")
		}
		n, id, err := parsePageToken(tok, "pay_")
		if err != nil {
			return f, err
		}
		f.BeforeCreated, f.BeforeID = fromNanos(n), id
	}
	return f, nil
}

// validateEndpoint checks a new endpoint; with allowPrivate its URL may name an internal host (as the
// dispatcher may then deliver there).
func validateEndpoint(req *paymentv1.CreateWebhookEndpointRequest, allowPrivate bool) (flows.EndpointInput, error) {
	var in flows.EndpointInput
	if err := validateAccount(req.GetAccountId()); err != nil {
		return in, err
	}
	if err := domain.ValidateText("url", req.GetUrl(), true, webhook.MaxURL); err != nil {
		return in, err
	}
	if err := webhook.CheckURL(req.GetUrl()); err != nil {
		return in, errs.Invalid("url", "%v", err)
	}
	if !allowPrivate {
		if err := webhook.CheckPublicHost(req.GetUrl()); err != nil {
			return in, errs.Invalid("url", "%v", err)
		}
	}
	if len(req.GetEventTypes()) > 32 {
		return in, errs.Invalid("event_types", "at most 32")
	}
	for i, t := range req.GetEventTypes() {
		if err := domain.ValidateText("event_types", t, true, 64); err != nil {
			return in, err
		}
		if !flows.IsEventType(t) {
			return in, errs.Invalid("event_types", "%q is not an event type (they are %s)", t, strings.Join(flows.EventTypes(), ", "))
		}
		if slices.Contains(req.GetEventTypes()[:i], t) {
			return in, errs.Invalid("event_types", "%q is listed twice", t)
		}
	}
	if err := domain.ValidateIdempotencyKey(req.GetIdempotencyKey()); err != nil {
		return in, err
	}
	return flows.EndpointInput{AccountID: req.GetAccountId(), URL: req.GetUrl(), EventTypes: req.GetEventTypes()}, nil
}

func pageSize(field string, n int32, def, max int) (int, error) {
	switch {
	case n == 0:
		return def, nil
	case n < 0 || int(n) > max:
		return 0, errs.Invalid(field, "must be 1 to %d, got %d", max, n)
	}
	return int(n), nil
}

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }
