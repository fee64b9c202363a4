package flows

import (
	"context"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/ledger"
	"github.com/bourse-dev/bourse/services/payment/internal/processor"
	"github.com/bourse-dev/bourse/services/payment/internal/store"
)

// A refund and a payout take money out of a trading account, so both are the same saga:
//
//	pending    --risk.Debit(ref = id)-->            processing   (ledger: customer → clearing)
//	processing --processor (key = id) approved-->    succeeded    (ledger: clearing → processor)
//	processing --processor declined-->               reversing
//	reversing  --risk.Credit(ref = id:reversal)-->   failed       (ledger: clearing → customer)
//
// Each arrow is one idempotent call followed by one compare-and-set transaction, so a crash anywhere
// resumes by running the arrow again (the janitor does, for any saga whose next step is due).

// RefundPayment refunds amount (0: all that is left) of a captured payment.
func (s *Service) RefundPayment(ctx context.Context, caller, key, paymentID string, amount int64, reason string) (domain.Refund, bool, error) {
	params := struct {
		PaymentID string `json:"payment_id"`
		Amount    int64  `json:"amount"`
		Reason    string `json:"reason"`
	}{paymentID, amount, reason}
	r := domain.Refund{ID: domain.NewID("re"), PaymentID: paymentID, Status: domain.RefundPending, Reason: reason}
	replay, err := s.claim(ctx, caller, key, MethodRefundPayment, params, r.ID, func(tx *store.Tx) error {
		p, err := tx.Payment(ctx, paymentID)
		if err != nil {
			return err
		}
		if p.Status != domain.PaymentSucceeded && p.Status != domain.PaymentPartiallyRefunded {
			return &errs.Error{Kind: errs.KindFailedPrecondition, Field: "payment_id", Msg: "payment is " + string(p.Status) + ": only a captured payment can be refunded"}
		}
		left := p.Captured - p.RefundReserved
		if amount == 0 {
			amount = left
		}
		if amount > left || amount <= 0 {
			return &errs.Error{Kind: errs.KindFailedPrecondition, Field: "amount",
				Msg: "exceeds what is left to refund (" + domain.Decimal(domain.Money{Amount: left, Currency: p.Amount.Currency}) + " " + p.Amount.Currency + ")"}
		}
		if err := tx.ReserveRefund(ctx, paymentID, amount); err != nil {
			if isConflict(err) {
				return &errs.Error{Kind: errs.KindFailedPrecondition, Field: "amount", Msg: "exceeds what is left to refund"}
			}
			return err
		}
		atts, err := tx.Attempts(ctx, paymentID)
		if err != nil {
			return err
		}
		for _, a := range atts {
			if a.Status == domain.AttemptCaptured {
				r.AttemptID, r.Processor = a.ID, a.Processor
			}
		}
		r.AccountID, r.Amount = p.AccountID, domain.Money{Amount: amount, Currency: p.Amount.Currency}
		// The request runs the first step itself; the janitor takes the refund over only if the
		// request has not moved it on by then (it died or stalled), never beside a live request.
		r.NextStepAt = tx.Now().Add(s.cfg.SettleAfter)
		if err := tx.InsertRefund(ctx, caller, &r); err != nil {
			return err
		}
		return tx.AddEvent(ctx, "refund.created", r.AccountID, r.ID, r)
	})
	if err != nil || replay != nil {
		return replayed[domain.Refund](replay, err)
	}
	return runClaimed(ctx, s, caller, key, r, s.advanceRefund)
}

// advanceRefund runs the refund saga's steps until it ends or a step must wait.
func (s *Service) advanceRefund(ctx context.Context, r domain.Refund) (domain.Refund, error) {
	// Past the processor or risk call the outcome must be recorded even if the client has gone.
	ctx = context.WithoutCancel(ctx)
	for range 4 {
		from := r
		var post *ledger.Transaction
		var wait bool
		switch r.Status {
		case domain.RefundPending:
			switch v, err := s.atRisk(ctx, s.cfg.Risk.Debit, r.AccountID, r.Amount, r.ID); v {
			case riskApplied:
				r.Status = domain.RefundProcessing
				t := ledger.RefundDebited(r.ID, r.AccountID, r.Amount)
				post = &t
			case riskRefused:
				r.Status, r.DeclineCode = domain.RefundFailed, riskCode(err)
			default:
				s.log.Warn("risk debit for a refund failed; retrying later", "refund", r.ID, "err", err)
				wait = true
			}
		case domain.RefundProcessing, domain.RefundUnknown:
			proc := s.procs[r.Processor]
			if proc == nil {
				s.log.Error("refund's processor is not configured", "refund", r.ID, "processor", r.Processor)
				wait = true
				break
			}
			pctx, cancel := s.procCtx(ctx)
			res, err := proc.Refund(pctx, processor.RefundRequest{Key: r.ID, AuthorizeKey: r.AttemptID, Money: processor.Money(r.Amount)})
			cancel()
			switch resultStatus(res, err) {
			case processor.Approved:
				r.Status, r.ProcessorRef = domain.RefundSucceeded, res.ProcessorRef
				t := ledger.RefundSucceeded(r.ID, r.Processor, r.Amount)
				post = &t
			case processor.Declined:
				r.Status, r.DeclineCode = domain.RefundReversing, res.DeclineCode
			case processor.NotReached:
				wait = true // the same processor, later: a refund goes back the way the money came
			default:
				if r.Status == domain.RefundProcessing {
					r.Status = domain.RefundUnknown
				}
				wait = true
			}
		case domain.RefundReversing:
			if wait = !s.creditBack(ctx, "refund", r.ID, r.AccountID, r.Amount); !wait {
				r.Status = domain.RefundFailed
				t := ledger.RefundReversed(r.ID, r.AccountID, r.Amount)
				post = &t
			}
		default:
			return r, nil
		}
		step := sagaStep{wait: wait, post: post, lookups: &r.Lookups, nextStepAt: &r.NextStepAt, account: r.AccountID, id: r.ID, obj: &r,
			update: func(tx *store.Tx) error { return tx.UpdateRefund(ctx, &r, from.Status) },
			also: func(tx *store.Tx) error {
				switch r.Status {
				case domain.RefundSucceeded:
					return tx.ApplyRefund(ctx, r.PaymentID, r.Amount.Amount)
				case domain.RefundFailed:
					return tx.ReleaseRefund(ctx, r.PaymentID, r.Amount.Amount)
				}
				return nil
			}}
		if r.Status != from.Status {
			step.event = "refund." + string(r.Status)
		}
		err := s.save(ctx, step)
		if isConflict(err) {
			return s.st.GetRefund(ctx, r.ID) // another replica or the janitor moved it on
		}
		if err != nil {
			return from, err
		}
		if wait {
			return r, nil
		}
	}
	return r, nil
}

// PayoutInput is a validated CreatePayout request.
type PayoutInput struct {
	AccountID   string            `json:"account_id"`
	Amount      domain.Money      `json:"amount"`
	Destination string            `json:"destination"`
	Metadata    map[string]string `json:"metadata"`
}

// CreatePayout withdraws money: risk is debited before any processor is asked.
func (s *Service) CreatePayout(ctx context.Context, caller, key string, in PayoutInput) (domain.Payout, bool, error) {
	x := domain.Payout{ID: domain.NewID("po"), Caller: caller, AccountID: in.AccountID, Amount: in.Amount,
		Destination: in.Destination, Status: domain.PayoutPending, Metadata: in.Metadata}
	replay, err := s.claim(ctx, caller, key, MethodCreatePayout, in, x.ID, func(tx *store.Tx) error {
		x.NextStepAt = tx.Now().Add(s.cfg.SettleAfter)
		if err := tx.InsertPayout(ctx, &x); err != nil {
			return err
		}
		return tx.AddEvent(ctx, "payout.created", x.AccountID, x.ID, x)
	})
	if err != nil || replay != nil {
		return replayed[domain.Payout](replay, err)
	}
	return runClaimed(ctx, s, caller, key, x, s.advancePayout)
}

// advancePayout runs the payout saga's steps until it ends or a step must wait.
func (s *Service) advancePayout(ctx context.Context, x domain.Payout) (domain.Payout, error) {
	// Past the processor or risk call the outcome must be recorded even if the client has gone.
	ctx = context.WithoutCancel(ctx)
	// chosen: this run has just recorded x.Processor and not called it yet. Only then does NotReached
	// prove the processor never saw the payout: a resumed saga's call may follow one that acted with
	// its answer lost or its process killed, so there NotReached waits like UNKNOWN.
	chosen := false
	for range 6 {
		from := x
		var post *ledger.Transaction
		var wait bool
		switch x.Status {
		case domain.PayoutPending:
			switch v, err := s.atRisk(ctx, s.cfg.Risk.Debit, x.AccountID, x.Amount, x.ID); v {
			case riskApplied:
				x.Status = domain.PayoutProcessing
				t := ledger.PayoutDebited(x.ID, x.AccountID, x.Amount)
				post = &t
			case riskRefused:
				x.Status, x.DeclineReason, x.DeclineCode = domain.PayoutFailed, domain.DeclineRiskRejected, riskCode(err)
			default:
				s.log.Warn("risk debit for a payout failed; retrying later", "payout", x.ID, "err", err)
				wait = true
			}
		case domain.PayoutProcessing:
			if x.Processor == "" {
				// Choose the processor durably before calling it: after a crash the saga must ask
				// the same one again, never fall back to another one that might pay out twice.
				procs, err := s.cfg.Router.Route(domain.MethodBankTransfer, x.Amount)
				if err != nil || len(procs) == 0 {
					x.Status, x.DeclineReason = domain.PayoutReversing, domain.DeclineProcessorUnavailable
					break
				}
				x.Processor = procs[0].Name()
				break
			}
			proc := s.procs[x.Processor]
			if proc == nil {
				s.log.Error("payout's processor is not configured", "payout", x.ID, "processor", x.Processor)
				wait = true
				break
			}
			first := chosen
			chosen = false
			pctx, cancel := s.procCtx(ctx)
			res, err := proc.Payout(pctx, processor.PayoutRequest{Key: x.ID, Money: processor.Money(x.Amount), Destination: x.Destination,
				Metadata: map[string]string{"payout_id": x.ID, "account_id": x.AccountID}})
			cancel()
			switch resultStatus(res, err) {
			case processor.Approved:
				x.Status, x.ProcessorRef = domain.PayoutSucceeded, res.ProcessorRef
				t := ledger.PayoutSucceeded(x.ID, x.Processor, x.Amount)
				post = &t
			case processor.Declined:
				x.Status, x.DeclineReason, x.DeclineCode = domain.PayoutReversing, domain.ReasonForCode(res.DeclineCode), res.DeclineCode
			case processor.NotReached:
				if !first {
					wait = true // an earlier call with this key may have paid out: ask the same processor again
					break
				}
				// Provably not there: the next routed processor, or a reversal once none is left.
				next := ""
				procs, _ := s.cfg.Router.Route(domain.MethodBankTransfer, x.Amount)
				for i, p := range procs {
					if p.Name() == x.Processor && i+1 < len(procs) {
						next = procs[i+1].Name()
					}
				}
				if next == "" {
					x.Status, x.DeclineReason = domain.PayoutReversing, domain.DeclineProcessorUnavailable
				} else {
					x.Processor = next
				}
			default:
				wait = true // UNKNOWN: ask the same processor again later, with the same key
			}
		case domain.PayoutReversing:
			if wait = !s.creditBack(ctx, "payout", x.ID, x.AccountID, x.Amount); !wait {
				x.Status = domain.PayoutFailed
				t := ledger.PayoutReversed(x.ID, x.AccountID, x.Amount)
				post = &t
			}
		default:
			return x, nil
		}
		step := sagaStep{wait: wait, post: post, lookups: &x.Lookups, nextStepAt: &x.NextStepAt, account: x.AccountID, id: x.ID, obj: &x,
			update: func(tx *store.Tx) error { return tx.UpdatePayout(ctx, &x, from.Status) }}
		if x.Status != from.Status {
			step.event = "payout." + string(x.Status)
		}
		err := s.save(ctx, step)
		if isConflict(err) {
			return s.st.GetPayout(ctx, x.ID)
		}
		if err != nil {
			return from, err
		}
		if wait {
			return x, nil
		}
		chosen = x.Status == domain.PayoutProcessing && x.Processor != from.Processor
	}
	return x, nil
}

// riskCode names risk's refusal for decline_code.
func riskCode(err error) string {
	switch errs.KindOf(err) {
	case errs.KindFailedPrecondition:
		return "insufficient_funds"
	case errs.KindNotFound:
		return "unknown_account_or_asset"
	case errs.KindAlreadyExists:
		return "ref_conflict"
	}
	return "invalid_request"
}
