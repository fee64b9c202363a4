package grpcapi

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bourse-dev/bourse/pkg/errs"
	acquirerv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/acquirer/v1"
	"github.com/bourse-dev/bourse/services/payment/internal/acquirer"
)

// Request limits (Stripe's where it has them).
const (
	maxKeyLen      = 255
	maxTextLen     = 255
	maxMetadata    = 50
	maxMetaKeyLen  = 40
	maxMetaValLen  = 500
	maxAmountMinor = 1_000_000_000_000_000 // 10^18 would be near int64's end; sums must not overflow
)

var kinds = map[acquirerv1.OperationKind]acquirer.Kind{
	acquirerv1.OperationKind_OPERATION_KIND_AUTHORIZE: acquirer.Authorize,
	acquirerv1.OperationKind_OPERATION_KIND_CAPTURE:   acquirer.Capture,
	acquirerv1.OperationKind_OPERATION_KIND_VOID:      acquirer.Void,
	acquirerv1.OperationKind_OPERATION_KIND_REFUND:    acquirer.Refund,
	acquirerv1.OperationKind_OPERATION_KIND_PAYOUT:    acquirer.Payout,
}

func kindPB(k acquirer.Kind) acquirerv1.OperationKind {
	for pb, d := range kinds {
		if d == k {
			return pb
		}
	}
	return acquirerv1.OperationKind_OPERATION_KIND_UNSPECIFIED
}

func kindOf(field string, k acquirerv1.OperationKind) (acquirer.Kind, error) {
	if d, ok := kinds[k]; ok {
		return d, nil
	}
	return "", toStatus(errs.Invalid(field, "%v is not an operation kind", k))
}

func checkText(field, v string, required bool) error {
	if required && v == "" {
		return errs.Invalid(field, "required")
	}
	if len(v) > maxTextLen {
		return errs.Invalid(field, "longer than %d characters", maxTextLen)
	}
	return nil
}

func checkMoney(m *acquirerv1.Money) error {
	if m == nil {
		return errs.Invalid("money", "required")
	}
	if m.GetAmount() <= 0 || m.GetAmount() > maxAmountMinor {
		return errs.Invalid("money.amount", "%d is outside 1-%d", m.GetAmount(), int64(maxAmountMinor))
	}
	c := m.GetCurrency()
	if len(c) != 3 || !isUpper(c) {
		return errs.Invalid("money.currency", "%q is not an ISO-4217 code (three upper-case letters)", c)
	}
	return nil
}

func isUpper(s string) bool {
	for _, r := range s {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

func checkMetadata(md map[string]string) error {
	if len(md) > maxMetadata {
		return errs.Invalid("metadata", "%d entries, at most %d", len(md), maxMetadata)
	}
	for k, v := range md {
		if k == "" || len(k) > maxMetaKeyLen || len(v) > maxMetaValLen {
			return errs.Invalid("metadata", "keys are 1-%d characters and values at most %d", maxMetaKeyLen, maxMetaValLen)
		}
	}
	return nil
}

// first returns the first failed check, as a status.
func first(checks ...error) error {
	for _, err := range checks {
		if err != nil {
			return toStatus(err)
		}
	}
	return nil
}

func keyErr(key string) error {
	if key == "" || len(key) > maxKeyLen {
		return errs.Invalid("key", "must be 1-%d characters", maxKeyLen)
	}
	return nil
}

func authorizeKeyErr(key string) error {
	if key == "" || len(key) > maxKeyLen {
		return errs.Invalid("authorize_key", "must be 1-%d characters", maxKeyLen)
	}
	return nil
}

func authorizeRequest(r *acquirerv1.AuthorizeRequest) (acquirer.Request, error) {
	err := first(keyErr(r.GetKey()), checkMoney(r.GetMoney()), checkText("method", r.GetMethod(), true),
		checkText("payment_token", r.GetPaymentToken(), true), checkText("statement_descriptor", r.GetStatementDescriptor(), false),
		checkMetadata(r.GetMetadata()))
	return acquirer.Request{Kind: acquirer.Authorize, Key: r.GetKey(), Amount: r.GetMoney().GetAmount(),
		Currency: r.GetMoney().GetCurrency(), Method: r.GetMethod(), Token: r.GetPaymentToken(), Capture: r.GetCapture(),
		Descriptor: r.GetStatementDescriptor(), Metadata: r.GetMetadata()}, err
}

func captureRequest(r *acquirerv1.CaptureRequest) (acquirer.Request, error) {
	err := first(keyErr(r.GetKey()), authorizeKeyErr(r.GetAuthorizeKey()), checkMoney(r.GetMoney()))
	return acquirer.Request{Kind: acquirer.Capture, Key: r.GetKey(), AuthorizeKey: r.GetAuthorizeKey(),
		Amount: r.GetMoney().GetAmount(), Currency: r.GetMoney().GetCurrency()}, err
}

func voidRequest(r *acquirerv1.VoidRequest) (acquirer.Request, error) {
	err := first(keyErr(r.GetKey()), authorizeKeyErr(r.GetAuthorizeKey()))
	return acquirer.Request{Kind: acquirer.Void, Key: r.GetKey(), AuthorizeKey: r.GetAuthorizeKey()}, err
}

func refundRequest(r *acquirerv1.RefundRequest) (acquirer.Request, error) {
	err := first(keyErr(r.GetKey()), authorizeKeyErr(r.GetAuthorizeKey()), checkMoney(r.GetMoney()))
	return acquirer.Request{Kind: acquirer.Refund, Key: r.GetKey(), AuthorizeKey: r.GetAuthorizeKey(),
		Amount: r.GetMoney().GetAmount(), Currency: r.GetMoney().GetCurrency()}, err
}

func payoutRequest(r *acquirerv1.PayoutRequest) (acquirer.Request, error) {
	err := first(keyErr(r.GetKey()), checkMoney(r.GetMoney()), checkText("destination", r.GetDestination(), true),
		checkMetadata(r.GetMetadata()))
	return acquirer.Request{Kind: acquirer.Payout, Key: r.GetKey(), Amount: r.GetMoney().GetAmount(),
		Currency: r.GetMoney().GetCurrency(), Destination: r.GetDestination(), Metadata: r.GetMetadata()}, err
}

func operationPB(op acquirer.Operation) *acquirerv1.Operation {
	outcome := acquirerv1.Outcome_OUTCOME_APPROVED
	if op.Outcome == acquirer.Declined {
		outcome = acquirerv1.Outcome_OUTCOME_DECLINED
	}
	return &acquirerv1.Operation{
		Kind: kindPB(op.Kind), Key: op.Key, Outcome: outcome, DeclineCode: op.DeclineCode, Message: op.Message,
		Ref: op.Ref, Money: &acquirerv1.Money{Amount: op.Amount, Currency: op.Currency}, Method: op.Method,
		PaymentToken: op.Token, Capture: op.Capture, AuthorizeKey: op.AuthorizeKey, Destination: op.Destination,
		Metadata: op.Metadata, ActedAt: timestamppb.New(op.ActedAt), Seq: op.Seq,
	}
}

func kindsFromPB(field string, in []acquirerv1.OperationKind) ([]acquirer.Kind, error) {
	var out []acquirer.Kind
	for i, k := range in {
		d, ok := kinds[k]
		if !ok {
			return nil, errs.Invalid(fmt.Sprintf("%s[%d]", field, i), "%v is not an operation kind", k)
		}
		out = append(out, d)
	}
	return out, nil
}

func duration(field string, d *durationpb.Duration) (time.Duration, error) {
	if d == nil {
		return 0, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, errs.Invalid(field, "%v", err)
	}
	return d.AsDuration(), nil
}

// faultsFromPB converts; the domain checks the ranges (Faults.Validate names the same fields).
func faultsFromPB(f *acquirerv1.Faults) (acquirer.Faults, error) {
	var out acquirer.Faults
	if f == nil {
		return out, nil
	}
	var err error
	if out.Latency, err = duration("faults.latency", f.GetLatency()); err != nil {
		return out, err
	}
	if out.Jitter, err = duration("faults.latency_jitter", f.GetLatencyJitter()); err != nil {
		return out, err
	}
	if out.AnswerDelay, err = duration("faults.answer_delay", f.GetAnswerDelay()); err != nil {
		return out, err
	}
	out.FailBefore, out.LoseAnswer, out.Seed = f.GetFailBeforeProbability(), f.GetLoseAnswerProbability(), f.GetSeed()
	switch f.GetLoseMode() {
	case acquirerv1.LoseMode_LOSE_MODE_UNSPECIFIED, acquirerv1.LoseMode_LOSE_MODE_UNAVAILABLE:
		out.LoseMode = acquirer.LoseUnavailable
	case acquirerv1.LoseMode_LOSE_MODE_HANG:
		out.LoseMode = acquirer.LoseHang
	default:
		return out, errs.Invalid("faults.lose_mode", "%v is not a mode", f.GetLoseMode())
	}
	if out.Kinds, err = kindsFromPB("faults.kinds", f.GetKinds()); err != nil {
		return out, err
	}
	if n := len(f.GetDeclineRules()); n > 100 {
		return out, errs.Invalid("faults.decline_rules", "%d rules, at most 100", n)
	}
	for i, r := range f.GetDeclineRules() {
		rule := acquirer.DeclineRule{Token: r.GetToken(), MinAmount: r.GetMinAmount(), MaxAmount: r.GetMaxAmount(),
			Currency: r.GetCurrency(), Code: r.GetCode()}
		if rule.Kinds, err = kindsFromPB(fmt.Sprintf("faults.decline_rules[%d].kinds", i), r.GetKinds()); err != nil {
			return out, err
		}
		out.Rules = append(out.Rules, rule)
	}
	return out, nil
}

// FaultsPB is the API form of f (also what the process logs at start).
func FaultsPB(f acquirer.Faults) *acquirerv1.Faults {
	out := &acquirerv1.Faults{
		FailBeforeProbability: f.FailBefore, LoseAnswerProbability: f.LoseAnswer, Seed: f.Seed,
		LoseMode: acquirerv1.LoseMode_LOSE_MODE_UNAVAILABLE,
	}
	if f.LoseMode == acquirer.LoseHang {
		out.LoseMode = acquirerv1.LoseMode_LOSE_MODE_HANG
	}
	if f.Latency > 0 {
		out.Latency = durationpb.New(f.Latency)
	}
	if f.Jitter > 0 {
		out.LatencyJitter = durationpb.New(f.Jitter)
	}
	if f.AnswerDelay > 0 {
		out.AnswerDelay = durationpb.New(f.AnswerDelay)
	}
	for _, k := range f.Kinds {
		out.Kinds = append(out.Kinds, kindPB(k))
	}
	for _, r := range f.Rules {
		rule := &acquirerv1.DeclineRule{Token: r.Token, MinAmount: r.MinAmount, MaxAmount: r.MaxAmount, Currency: r.Currency, Code: r.Code}
		for _, k := range r.Kinds {
			rule.Kinds = append(rule.Kinds, kindPB(k))
		}
		out.DeclineRules = append(out.DeclineRules, rule)
	}
	return out
}

func statsPB(s acquirer.Stats) *acquirerv1.GetStatsResponse {
	out := &acquirerv1.GetStatsResponse{Lookups: s.Lookups, StartedAt: timestamppb.New(s.StartedAt)}
	for _, k := range acquirer.Kinds {
		v := s.Kinds[k]
		out.Kinds = append(out.Kinds, &acquirerv1.KindStats{Kind: kindPB(k), Approved: v.Approved, Declined: v.Declined,
			Replayed: v.Replayed, KeyConflicts: v.KeyConflicts, FailedBefore: v.FailedBefore, AnswersLost: v.AnswersLost, Stored: v.Stored})
	}
	return out
}
