package flows

import (
	"context"
	"encoding/json"

	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/processor"
	"github.com/bourse-dev/bourse/services/payment/internal/store"
)

// A deposit's common path, a new key whose only attempt gets a verdict, takes the store's deposit
// lanes (store/lane.go): the same rows as the general path, written with other requests'. What is
// encoded into them (events, the saved result, the outbox payload) is encoded here, on the
// request's goroutine, not by the lane's writer, which is the one that every request waits for.

// newDeposit is the lane claim of payment p with its first attempt (nil: none yet), or nil when the
// store has no lanes. It sets the rows' times on p and first, as the general path's claim would.
func (s *Service) newDeposit(p *domain.Payment, first *domain.Attempt) (*store.NewDeposit, error) {
	if !s.st.HasLanes() {
		return nil, nil
	}
	at := s.st.RowTime()
	p.CreatedAt, p.UpdatedAt = at, at
	if first != nil {
		first.CreatedAt, first.UpdatedAt = at, at
		first.NextLookupAt = at.Add(s.cfg.SettleAfter)
	}
	data, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return &store.NewDeposit{At: at, Payment: *p, Attempt: first,
		Event: store.EventRow{ID: domain.NewID("evt"), Type: "payment.created", AccountID: p.AccountID, ObjectID: p.ID, Data: data}}, nil
}

// settleInLane records the verdict on the payment's only attempt through a deposit lane, p and a as
// the request with key wrote them. ok false: the lane did not write it (someone settled the attempt first,
// or the batch failed), and settleAuthorize, which reads, is the way on.
func (s *Service) settleInLane(ctx context.Context, p domain.Payment, a domain.Attempt, key string, verdict processor.Status, res processor.Result) (domain.Payment, bool) {
	if !s.st.HasLanes() {
		return p, false
	}
	// Past the processor call the outcome must be recorded even if the client has gone.
	ctx = context.WithoutCancel(ctx)
	at := s.st.RowTime()
	from := p.Status
	p, next := judge(p, a, verdict, res)
	p.UpdatedAt, next.UpdatedAt = at, at
	p.PaymentToken = ""
	v := &store.DepositVerdict{At: at, Attempt: next, AttemptFrom: a.Status, AttemptFromOp: a.PendingOp, Payment: p, PaymentFrom: from,
		Caller: p.Caller, Key: key, Method: MethodCreatePayment}
	if p.Status == domain.PaymentSucceeded {
		lt := captured(p, next.Processor)
		payload, err := json.Marshal(riskCredit(ctx, p))
		if err != nil {
			return p, false
		}
		v.Ledger, v.Outbox = &lt, &store.OutboxRow{Kind: OutboxRiskCredit, Ref: p.ID, Payload: payload}
	}
	data, err := json.Marshal(p)
	if err != nil {
		return p, false
	}
	v.Event = store.EventRow{ID: domain.NewID("evt"), Type: "payment." + string(p.Status), AccountID: p.AccountID, ObjectID: p.ID, Data: data}
	p.Attempts = []domain.Attempt{next}
	if v.Result, err = json.Marshal(p); err != nil {
		return p, false
	}
	applied, err := s.st.ApplyVerdict(ctx, v)
	if err != nil {
		s.log.Warn("deposit lane batch failed; the verdict takes the general path", "payment", p.ID, "err", err)
	}
	return p, applied
}
