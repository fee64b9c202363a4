package flows

import (
	"context"
	"encoding/json"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/bourse-dev/bourse/pkg/fraud"
	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/ledger"
	"github.com/bourse-dev/bourse/services/payment/internal/processor"
	"github.com/bourse-dev/bourse/services/payment/internal/store"
)

// PaymentInput is a validated CreatePayment request. Its JSON (without the token's value, which only
// enters as a hash) is the idempotency fingerprint.
type PaymentInput struct {
	AccountID     string               `json:"account_id"`
	Amount        domain.Money         `json:"amount"`
	Method        domain.Method        `json:"method"`
	PaymentToken  string               `json:"payment_token"`
	CaptureMethod domain.CaptureMethod `json:"capture_method"`
	Metadata      map[string]string    `json:"metadata"`
}

// RiskCredit is the outbox payload that credits risk for a captured deposit.
type RiskCredit struct {
	PaymentID string `json:"payment_id"`
	AccountID string `json:"account_id"`
	Asset     string `json:"asset"`
	Amount    string `json:"amount"`
	// Trace carries the W3C trace context of the request that captured the deposit, so risk's Credit
	// shows in that request's trace although the dispatcher sends it later.
	Trace map[string]string `json:"trace,omitempty"`
}

// OutboxRiskCredit is the outbox kind of RiskCredit.
const OutboxRiskCredit = "risk_credit"

// CreatePayment runs a deposit as far as it can go now: a payment that ends processing (an UNKNOWN at
// the processor) is settled later by the janitor.
func (s *Service) CreatePayment(ctx context.Context, caller, key string, in PaymentInput) (domain.Payment, bool, error) {
	p := domain.Payment{ID: domain.NewID("pay"), Caller: caller, AccountID: in.AccountID, Amount: in.Amount, Method: in.Method,
		PaymentToken: in.PaymentToken, CaptureMethod: in.CaptureMethod, Status: domain.PaymentProcessing, Metadata: in.Metadata}
	if err := domain.PaymentTransition(domain.PaymentRequiresConfirmation, domain.PaymentProcessing); err != nil {
		return p, false, err
	}
	// Without a fraud check the first attempt is known at once: it is written with the payment, in
	// the transaction that claims the key (one commit fewer on the common path).
	procs, err := s.cfg.Router.Route(p.Method, p.Amount)
	if err != nil {
		return p, false, err // like a validation failure: nothing written, the key stays free
	}
	var first *domain.Attempt
	if s.cfg.Fraud == nil && len(procs) > 0 {
		first = &domain.Attempt{ID: domain.NewID("att"), PaymentID: p.ID, Processor: procs[0].Name(), Status: domain.AttemptPending,
			PendingOp: domain.OpAuthorize}
	}
	lane, err := s.newDeposit(&p, first)
	if err != nil {
		return p, false, err
	}
	replay, err := s.claimWith(ctx, caller, key, MethodCreatePayment, in, p.ID, lane, func(tx *store.Tx) error {
		if err := tx.InsertPayment(ctx, &p); err != nil {
			return err
		}
		if first != nil {
			first.NextLookupAt = tx.Now().Add(s.cfg.SettleAfter)
			if err := tx.InsertAttempt(ctx, first); err != nil {
				return err
			}
		}
		return tx.AddEvent(ctx, "payment.created", p.AccountID, p.ID, p)
	})
	if err != nil || replay != nil {
		var got domain.Payment
		if err == nil {
			err = json.Unmarshal(replay, &got)
		}
		return got, err == nil, err
	}
	// Once begun, the payment is finished whether or not the client waits: a fallback's attempt or
	// the failure must still be written, and the key finished with it.
	out, err := s.runPayment(context.WithoutCancel(ctx), p, procs, first, key)
	if err != nil {
		return out, false, err
	}
	if out.Status == domain.PaymentProcessing {
		// Settled payments completed the record in their settling transaction; an UNKNOWN one
		// answers its processing state.
		s.complete(ctx, caller, key, out)
	}
	return out, false, nil
}

// runPayment checks fraud, then tries the routed processors in order. key is the request's
// idempotency key.
func (s *Service) runPayment(ctx context.Context, p domain.Payment, procs []processor.Processor, first *domain.Attempt, key string) (domain.Payment, error) {
	if s.cfg.Fraud != nil {
		v, err := s.cfg.Fraud.Check(ctx, s.features(ctx, p), p.Amount)
		if err != nil {
			// The checker applies the configured fail-open/closed policy itself; an error here is a
			// checker that could not decide, and the payment goes on unscored.
			s.log.Warn("fraud check failed; payment not scored", "payment", p.ID, "err", err)
		}
		p.FraudScore = v.Score
		if v.Decline {
			return s.failPayment(ctx, p.ID, domain.DeclineFraudSuspected, "", v.Score)
		}
	}
	for i, proc := range procs {
		if i == 0 && first != nil {
			if res, done, err := s.authorize(ctx, p, proc, *first, key); done {
				return res, err
			}
			continue
		}
		a := domain.Attempt{ID: domain.NewID("att"), PaymentID: p.ID, Processor: proc.Name(), Status: domain.AttemptPending,
			PendingOp: domain.OpAuthorize}
		cont := false
		err := s.st.InTx(ctx, func(tx *store.Tx) error {
			cur, err := tx.Payment(ctx, p.ID)
			if err != nil {
				return err
			}
			if cur.Status != domain.PaymentProcessing {
				return nil // the janitor settled it meanwhile
			}
			cont = true
			a.NextLookupAt = tx.Now().Add(s.cfg.SettleAfter)
			if err := tx.TouchPayment(ctx, p.ID); err != nil {
				return err
			}
			if p.FraudScore != 0 && cur.FraudScore != p.FraudScore {
				if err := tx.SetFraudScore(ctx, p.ID, p.FraudScore); err != nil {
					return err
				}
			}
			return tx.InsertAttempt(ctx, &a)
		})
		if err != nil {
			return p, err
		}
		if !cont {
			return s.st.GetPayment(ctx, p.ID)
		}
		if res, done, err := s.authorize(ctx, p, proc, a, ""); done {
			return res, err
		}
	}
	return s.failPayment(ctx, p.ID, domain.DeclineProcessorUnavailable, "", p.FraudScore)
}

// authorize runs one attempt at one processor. done is false when the processor was provably not
// reached and the next one may be tried. laneKey, when set, is the idempotency key of the request
// that wrote p and a, a being the payment's only attempt: its verdict may then take a deposit lane.
func (s *Service) authorize(ctx context.Context, p domain.Payment, proc processor.Processor, a domain.Attempt, laneKey string) (_ domain.Payment, done bool, _ error) {
	// Past the processor or risk call the outcome must be recorded even if the client has gone.
	ctx = context.WithoutCancel(ctx)
	if s.beforeAuthorize != nil {
		s.beforeAuthorize(a)
	}
	pctx, cancel := s.authorizeCtx(ctx, a)
	if pctx.Err() != nil {
		// The request stalled so long that the janitor may already have looked the attempt up and,
		// finding nothing, failed it: a call now could charge a payment that has failed. It is not
		// sent, so the processor provably was not reached.
		cancel()
		return s.notReached(ctx, p, proc, a, pctx.Err())
	}
	res, err := proc.Authorize(pctx, processor.AuthorizeRequest{Key: a.ID, Money: processor.Money(p.Amount), Method: string(p.Method),
		PaymentToken: p.PaymentToken, Capture: p.CaptureMethod != domain.CaptureManual,
		Metadata: map[string]string{"payment_id": p.ID, "account_id": p.AccountID}})
	cancel()
	switch st := resultStatus(res, err); st {
	case processor.Approved, processor.Declined:
		if laneKey != "" {
			if p, ok := s.settleInLane(ctx, p, a, laneKey, st, res); ok {
				return p, true, nil
			}
		}
		p, err := s.settleAuthorize(ctx, a, st, res)
		return p, true, err
	case processor.NotReached:
		return s.notReached(ctx, p, proc, a, err)
	default:
		s.log.Warn("processor outcome unknown; the janitor looks it up", "payment", p.ID, "processor", proc.Name(), "err", err)
		if err := s.st.InTx(ctx, func(tx *store.Tx) error {
			from := a
			a.Status = domain.AttemptUnknown
			a.NextLookupAt = tx.Now().Add(s.cfg.SettleAfter)
			return tx.UpdateAttempt(ctx, &a, from.Status, from.PendingOp)
		}); err != nil && !isConflict(err) {
			return p, true, err
		}
		p, err := s.st.GetPayment(ctx, p.ID)
		return p, true, err
	}
}

// notReached records that attempt a provably never reached its processor, so the next one may be
// tried (unless the janitor settled the attempt meanwhile).
func (s *Service) notReached(ctx context.Context, p domain.Payment, proc processor.Processor, a domain.Attempt, cause error) (_ domain.Payment, done bool, _ error) {
	s.log.Info("processor not reached; trying the next", "payment", p.ID, "processor", proc.Name(), "err", cause)
	if err := s.st.InTx(ctx, func(tx *store.Tx) error {
		from := a
		a.Status, a.PendingOp = domain.AttemptNotReached, domain.OpNone
		return tx.UpdateAttempt(ctx, &a, from.Status, from.PendingOp)
	}); err != nil {
		if isConflict(err) {
			// The janitor got there first; its verdict is the payment's.
			p, err := s.st.GetPayment(ctx, p.ID)
			return p, true, err
		}
		return p, true, err
	}
	return p, false, nil
}

// authorizeCtx bounds an authorization call so that it ends some time before the janitor may look
// its attempt up: the janitor reads "not found" at the processor as "never happened", which is only
// true of a call that can no longer arrive. The grace is what a processor that honours the deadline
// may still need to finish an act begun just before it (a quarter of --settle-after, at most a
// processor timeout).
func (s *Service) authorizeCtx(ctx context.Context, a domain.Attempt) (context.Context, context.CancelFunc) {
	pctx, cancel := s.procCtx(ctx)
	if a.NextLookupAt.IsZero() {
		return pctx, cancel
	}
	grace := min(s.cfg.ProcessorTimeout, s.cfg.SettleAfter/4)
	// The time left is measured on the store's clock, the one NextLookupAt and the janitor use.
	dctx, dcancel := context.WithTimeout(pctx, a.NextLookupAt.Sub(s.st.Now())-grace)
	return dctx, func() { dcancel(); cancel() }
}

// features computes the fraud model's input from the payment and the account's history.
func (s *Service) features(ctx context.Context, p domain.Payment) fraud.Features {
	f := fraud.Features{AmountMajor: domain.Major(p.Amount), Currency: p.Amount.Currency, Method: string(p.Method)}
	if first, err := s.st.FirstPaymentAt(ctx, p.AccountID); err == nil && !first.IsZero() {
		f.AccountAgeDays = p.CreatedAt.Sub(first).Hours() / 24
	}
	// The payment itself is already stored: leave it out of the counts.
	if n, _, err := s.st.CountPaymentsSince(ctx, p.AccountID, p.Amount.Currency, p.CreatedAt.Add(-time.Hour)); err == nil {
		f.DepositsLastHour = max(n-1, 0)
	}
	if n, sum, err := s.st.CountPaymentsSince(ctx, p.AccountID, p.Amount.Currency, p.CreatedAt.Add(-24*time.Hour)); err == nil {
		f.DepositsLastDay = max(n-1, 0)
		f.AmountLastDayMajor = domain.Major(domain.Money{Amount: max(sum-p.Amount.Amount, 0), Currency: p.Amount.Currency})
	}
	return f
}

// settleAuthorize records the processor's verdict on an authorization (from the request, or from the
// janitor's lookup) with everything it causes, in one transaction: the attempt and the payment, and
// for a capture the ledger transaction and the outbox row that credits risk.
func (s *Service) settleAuthorize(ctx context.Context, a domain.Attempt, verdict processor.Status, res processor.Result) (domain.Payment, error) {
	// Past the processor or risk call the outcome must be recorded even if the client has gone.
	ctx = context.WithoutCancel(ctx)
	var settled *domain.Payment // as committed, when this transaction settled it
	err := s.st.InTx(ctx, func(tx *store.Tx) error {
		settled = nil
		cur, err := tx.Attempt(ctx, a.ID)
		if err != nil {
			return err
		}
		if cur.PendingOp != domain.OpAuthorize {
			return nil // settled already
		}
		p, err := tx.Payment(ctx, a.PaymentID)
		if err != nil {
			return err
		}
		from := p.Status
		p, next := judge(p, cur, verdict, res)
		if err := tx.UpdateAttempt(ctx, &next, cur.Status, cur.PendingOp); err != nil {
			return err
		}
		if err := tx.SetPaymentStatus(ctx, &p, from); err != nil {
			return err
		}
		if err := s.afterPaymentChange(ctx, tx, p, next.Processor); err != nil {
			return err
		}
		if p, err = completeWith(ctx, tx, MethodCreatePayment, p); err == nil {
			settled = &p
		}
		return err
	})
	if err != nil && !isConflict(err) {
		return domain.Payment{}, err
	}
	if err == nil && settled != nil {
		return *settled, nil // what a read after the commit would return, without the read
	}
	return s.st.GetPayment(ctx, a.PaymentID)
}

// judge is what an authorization's verdict makes of the payment and its attempt.
func judge(p domain.Payment, a domain.Attempt, verdict processor.Status, res processor.Result) (domain.Payment, domain.Attempt) {
	a.PendingOp, a.ProcessorRef, a.DeclineCode = domain.OpNone, res.ProcessorRef, res.DeclineCode
	switch {
	case verdict == processor.Declined:
		a.Status = domain.AttemptFailed
		p.Status, p.DeclineReason, p.DeclineCode = domain.PaymentFailed, domain.ReasonForCode(res.DeclineCode), res.DeclineCode
	case verdict == processor.NotFound:
		a.Status = domain.AttemptFailed
		p.Status, p.DeclineReason = domain.PaymentFailed, domain.DeclineProcessorUnavailable
	case p.CaptureMethod == domain.CaptureManual:
		a.Status = domain.AttemptAuthorized
		p.Status = domain.PaymentRequiresCapture
	default:
		a.Status = domain.AttemptCaptured
		p.Status, p.Captured = domain.PaymentSucceeded, p.Amount.Amount
	}
	return p, a
}

// afterPaymentChange writes what a payment's new status causes: its event, and for a capture the
// ledger transaction and the risk credit.
func (s *Service) afterPaymentChange(ctx context.Context, tx *store.Tx, p domain.Payment, proc string) error {
	if p.Status == domain.PaymentSucceeded {
		if err := tx.Post(ctx, captured(p, proc)); err != nil {
			return err
		}
		if err := tx.Enqueue(ctx, OutboxRiskCredit, p.ID, riskCredit(ctx, p)); err != nil {
			return err
		}
	}
	return tx.AddEvent(ctx, "payment."+string(p.Status), p.AccountID, p.ID, p)
}

// captured is the ledger transaction of a payment's capture.
func captured(p domain.Payment, proc string) ledger.Transaction {
	return ledger.Captured(p.ID, proc, p.AccountID, domain.Money{Amount: p.Captured, Currency: p.Amount.Currency})
}

// riskCredit is the outbox payload that credits risk with a payment's capture, carrying the trace
// of the request that captured it.
func riskCredit(ctx context.Context, p domain.Payment) RiskCredit {
	trace := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, trace)
	return RiskCredit{PaymentID: p.ID, AccountID: p.AccountID, Asset: p.Amount.Currency,
		Amount: domain.Decimal(domain.Money{Amount: p.Captured, Currency: p.Amount.Currency}), Trace: trace}
}

// failPayment fails a payment still in processing that has no attempt in flight.
func (s *Service) failPayment(ctx context.Context, id string, reason domain.DeclineReason, code string, score float64) (domain.Payment, error) {
	err := s.st.InTx(ctx, func(tx *store.Tx) error {
		p, err := tx.Payment(ctx, id)
		if err != nil {
			return err
		}
		if p.Status != domain.PaymentProcessing {
			return nil
		}
		atts, err := tx.Attempts(ctx, id)
		if err != nil {
			return err
		}
		for _, a := range atts {
			if a.PendingOp != domain.OpNone {
				return nil // an attempt is still open: only its verdict settles the payment
			}
		}
		p.Status, p.DeclineReason, p.DeclineCode, p.FraudScore = domain.PaymentFailed, reason, code, score
		if err := tx.SetPaymentStatus(ctx, &p, domain.PaymentProcessing); err != nil {
			return err
		}
		if err := tx.AddEvent(ctx, "payment.failed", p.AccountID, p.ID, p); err != nil {
			return err
		}
		// A failure began executing (a fraud decline, no processor reachable): like any result it
		// is the answer a retry with the same key replays, so the key is finished here.
		return completeIn(ctx, tx, MethodCreatePayment, p)
	})
	if err != nil && !isConflict(err) {
		return domain.Payment{}, err
	}
	return s.st.GetPayment(ctx, id)
}

// completeIn saves p (with its attempts as this transaction sees them) as the result of every
// in-flight request of method on it: the request's own, or that of a request whose process died.
func completeIn(ctx context.Context, tx *store.Tx, method string, p domain.Payment) error {
	_, err := completeWith(ctx, tx, method, p)
	return err
}

// completeWith is completeIn returning the saved result.
func completeWith(ctx context.Context, tx *store.Tx, method string, p domain.Payment) (domain.Payment, error) {
	atts, err := tx.Attempts(ctx, p.ID)
	if err != nil {
		return p, err
	}
	p.Attempts = atts
	b, err := json.Marshal(p)
	if err != nil {
		return p, err
	}
	return p, tx.CompleteKeysOf(ctx, method, p.ID, b)
}
