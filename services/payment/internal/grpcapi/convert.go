package grpcapi

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	paymentv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/payment/v1"
	"github.com/bourse-dev/bourse/services/payment/internal/domain"
)

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func money(m domain.Money) *paymentv1.Money {
	exp, _ := domain.Exponent(m.Currency)
	e := int32(exp)
	return &paymentv1.Money{Amount: m.Amount, Currency: m.Currency, Exponent: &e}
}

var paymentStatuses = map[domain.PaymentStatus]paymentv1.PaymentStatus{
	domain.PaymentRequiresConfirmation: paymentv1.PaymentStatus_PAYMENT_STATUS_REQUIRES_CONFIRMATION,
	domain.PaymentProcessing:           paymentv1.PaymentStatus_PAYMENT_STATUS_PROCESSING,
	domain.PaymentRequiresCapture:      paymentv1.PaymentStatus_PAYMENT_STATUS_REQUIRES_CAPTURE,
	domain.PaymentSucceeded:            paymentv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED,
	domain.PaymentFailed:               paymentv1.PaymentStatus_PAYMENT_STATUS_FAILED,
	domain.PaymentCanceled:             paymentv1.PaymentStatus_PAYMENT_STATUS_CANCELED,
	domain.PaymentPartiallyRefunded:    paymentv1.PaymentStatus_PAYMENT_STATUS_PARTIALLY_REFUNDED,
	domain.PaymentRefunded:             paymentv1.PaymentStatus_PAYMENT_STATUS_REFUNDED,
}

var attemptStatuses = map[domain.AttemptStatus]paymentv1.AttemptStatus{
	domain.AttemptPending:    paymentv1.AttemptStatus_ATTEMPT_STATUS_PENDING,
	domain.AttemptAuthorized: paymentv1.AttemptStatus_ATTEMPT_STATUS_AUTHORIZED,
	domain.AttemptCaptured:   paymentv1.AttemptStatus_ATTEMPT_STATUS_CAPTURED,
	domain.AttemptFailed:     paymentv1.AttemptStatus_ATTEMPT_STATUS_FAILED,
	domain.AttemptUnknown:    paymentv1.AttemptStatus_ATTEMPT_STATUS_UNKNOWN,
	domain.AttemptVoided:     paymentv1.AttemptStatus_ATTEMPT_STATUS_VOIDED,
	domain.AttemptNotReached: paymentv1.AttemptStatus_ATTEMPT_STATUS_NOT_REACHED,
}

var refundStatuses = map[domain.RefundStatus]paymentv1.RefundStatus{
	domain.RefundPending:    paymentv1.RefundStatus_REFUND_STATUS_PENDING,
	domain.RefundProcessing: paymentv1.RefundStatus_REFUND_STATUS_PROCESSING,
	domain.RefundUnknown:    paymentv1.RefundStatus_REFUND_STATUS_UNKNOWN,
	domain.RefundSucceeded:  paymentv1.RefundStatus_REFUND_STATUS_SUCCEEDED,
	domain.RefundReversing:  paymentv1.RefundStatus_REFUND_STATUS_REVERSING,
	domain.RefundFailed:     paymentv1.RefundStatus_REFUND_STATUS_FAILED,
}

var payoutStatuses = map[domain.PayoutStatus]paymentv1.PayoutStatus{
	domain.PayoutPending:    paymentv1.PayoutStatus_PAYOUT_STATUS_PENDING,
	domain.PayoutProcessing: paymentv1.PayoutStatus_PAYOUT_STATUS_PROCESSING,
	domain.PayoutSucceeded:  paymentv1.PayoutStatus_PAYOUT_STATUS_SUCCEEDED,
	domain.PayoutReversing:  paymentv1.PayoutStatus_PAYOUT_STATUS_REVERSING,
	domain.PayoutFailed:     paymentv1.PayoutStatus_PAYOUT_STATUS_FAILED,
}

var declineReasons = map[domain.DeclineReason]paymentv1.DeclineReason{
	domain.DeclineCardDeclined:         paymentv1.DeclineReason_DECLINE_REASON_CARD_DECLINED,
	domain.DeclineInsufficientFunds:    paymentv1.DeclineReason_DECLINE_REASON_INSUFFICIENT_FUNDS,
	domain.DeclineFraudSuspected:       paymentv1.DeclineReason_DECLINE_REASON_FRAUD_SUSPECTED,
	domain.DeclineExpiredCard:          paymentv1.DeclineReason_DECLINE_REASON_EXPIRED_CARD,
	domain.DeclineProcessorUnavailable: paymentv1.DeclineReason_DECLINE_REASON_PROCESSOR_UNAVAILABLE,
	domain.DeclineDoNotHonor:           paymentv1.DeclineReason_DECLINE_REASON_DO_NOT_HONOR,
	domain.DeclineOther:                paymentv1.DeclineReason_DECLINE_REASON_OTHER,
	domain.DeclineRiskRejected:         paymentv1.DeclineReason_DECLINE_REASON_RISK_REJECTED,
	domain.DeclineExpired:              paymentv1.DeclineReason_DECLINE_REASON_EXPIRED,
}

var methods = map[paymentv1.PaymentMethod]domain.Method{
	paymentv1.PaymentMethod_PAYMENT_METHOD_CARD:          domain.MethodCard,
	paymentv1.PaymentMethod_PAYMENT_METHOD_BANK_TRANSFER: domain.MethodBankTransfer,
}

func methodOf(m domain.Method) paymentv1.PaymentMethod {
	for k, v := range methods {
		if v == m {
			return k
		}
	}
	return paymentv1.PaymentMethod_PAYMENT_METHOD_UNSPECIFIED
}

func paymentStatusOf(s paymentv1.PaymentStatus) (domain.PaymentStatus, bool) {
	for k, v := range paymentStatuses {
		if v == s {
			return k, true
		}
	}
	return "", false
}

func toPayment(p domain.Payment) *paymentv1.Payment {
	out := &paymentv1.Payment{
		PaymentId: p.ID, AccountId: p.AccountID, Amount: money(p.Amount), Method: methodOf(p.Method),
		CaptureMethod: paymentv1.CaptureMethod_CAPTURE_METHOD_AUTOMATIC, Status: paymentStatuses[p.Status],
		AmountCaptured: money(domain.Money{Amount: p.Captured, Currency: p.Amount.Currency}),
		AmountRefunded: money(domain.Money{Amount: p.Refunded, Currency: p.Amount.Currency}),
		DeclineReason:  declineReasons[p.DeclineReason], DeclineCode: p.DeclineCode, FraudScore: p.FraudScore,
		Metadata: p.Metadata, RiskCredited: p.RiskCredited, CreatedAt: ts(p.CreatedAt), UpdatedAt: ts(p.UpdatedAt),
	}
	if p.CaptureMethod == domain.CaptureManual {
		out.CaptureMethod = paymentv1.CaptureMethod_CAPTURE_METHOD_MANUAL
	}
	if p.Status == domain.PaymentProcessing || p.Status == domain.PaymentRequiresCapture {
		// Captured holds the amount asked for while a capture is at the processor: it is not captured yet.
		out.AmountCaptured.Amount = 0
	}
	for _, a := range p.Attempts {
		out.Attempts = append(out.Attempts, &paymentv1.Attempt{AttemptId: a.ID, Processor: a.Processor, Status: attemptStatuses[a.Status],
			ProcessorRef: a.ProcessorRef, DeclineCode: a.DeclineCode, CreatedAt: ts(a.CreatedAt), UpdatedAt: ts(a.UpdatedAt)})
	}
	return out
}

func toRefund(r domain.Refund) *paymentv1.Refund {
	return &paymentv1.Refund{RefundId: r.ID, PaymentId: r.PaymentID, Amount: money(r.Amount), Status: refundStatuses[r.Status],
		Reason: r.Reason, ProcessorRef: r.ProcessorRef, DeclineCode: r.DeclineCode, CreatedAt: ts(r.CreatedAt), UpdatedAt: ts(r.UpdatedAt)}
}

func toPayout(x domain.Payout) *paymentv1.Payout {
	return &paymentv1.Payout{PayoutId: x.ID, AccountId: x.AccountID, Amount: money(x.Amount), Status: payoutStatuses[x.Status],
		Destination: x.Destination, Processor: x.Processor, ProcessorRef: x.ProcessorRef, DeclineReason: declineReasons[x.DeclineReason],
		DeclineCode: x.DeclineCode, Metadata: x.Metadata, CreatedAt: ts(x.CreatedAt), UpdatedAt: ts(x.UpdatedAt)}
}

func toEndpoint(e domain.WebhookEndpoint) *paymentv1.WebhookEndpoint {
	return &paymentv1.WebhookEndpoint{EndpointId: e.ID, AccountId: e.AccountID, Url: e.URL, EventTypes: e.EventTypes, CreatedAt: ts(e.CreatedAt)}
}
