package flows

import (
	"context"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/processor"
	"github.com/bourse-dev/bourse/services/payment/internal/store"
)

// Manual capture and cancel: the payment goes requires_capture → processing while the capture or
// void is at the processor, so a second one cannot start meanwhile.

// CapturePayment captures amount (0: all) of a payment in requires_capture.
func (s *Service) CapturePayment(ctx context.Context, caller, key, paymentID string, amount int64) (domain.Payment, bool, error) {
	return s.captureOrVoid(ctx, caller, key, paymentID, amount, domain.OpCapture)
}

// CancelPayment voids a payment in requires_capture.
func (s *Service) CancelPayment(ctx context.Context, caller, key, paymentID string) (domain.Payment, bool, error) {
	return s.captureOrVoid(ctx, caller, key, paymentID, 0, domain.OpVoid)
}

func (s *Service) captureOrVoid(ctx context.Context, caller, key, paymentID string, amount int64, op domain.Op) (domain.Payment, bool, error) {
	method := MethodCapturePayment
	if op == domain.OpVoid {
		method = MethodCancelPayment
	}
	params := struct {
		PaymentID string `json:"payment_id"`
		Amount    int64  `json:"amount"`
	}{paymentID, amount}
	var a domain.Attempt
	replay, err := s.claim(ctx, caller, key, method, params, paymentID, func(tx *store.Tx) error {
		var err error
		a, err = s.beginCaptureOrVoid(ctx, tx, paymentID, amount, op, domain.DeclineNone)
		return err
	})
	if err != nil || replay != nil {
		return replayed[domain.Payment](replay, err)
	}
	out, err := s.runCaptureOrVoid(ctx, a, func(tx *store.Tx) error { return s.unclaim(ctx, tx, caller, key) })
	if err != nil {
		return out, false, err
	}
	if out.Status == domain.PaymentProcessing {
		s.complete(ctx, caller, key, out) // UNKNOWN: the settling transaction completes nothing yet
	}
	return out, false, nil
}

// beginCaptureOrVoid moves a payment in requires_capture to processing with op pending on its
// authorized attempt, so no second capture or void can start meanwhile. Both writes are
// compare-and-set: of a capture, a cancel and the expiry racing for one payment, exactly one begins;
// the others are FailedPrecondition. amount is the capture's (0: all); reason is recorded on the
// payment (DeclineExpired for the expiry).
func (s *Service) beginCaptureOrVoid(ctx context.Context, tx *store.Tx, paymentID string, amount int64, op domain.Op, reason domain.DeclineReason) (domain.Attempt, error) {
	p, err := tx.Payment(ctx, paymentID)
	if err != nil {
		return domain.Attempt{}, err
	}
	if p.Status != domain.PaymentRequiresCapture {
		return domain.Attempt{}, notCapturable(p.Status)
	}
	if amount == 0 {
		amount = p.Amount.Amount
	}
	if amount > p.Amount.Amount {
		return domain.Attempt{}, errs.Invalid("amount_to_capture", "%d exceeds the authorized %d", amount, p.Amount.Amount)
	}
	atts, err := tx.Attempts(ctx, paymentID)
	if err != nil {
		return domain.Attempt{}, err
	}
	var a domain.Attempt
	for _, x := range atts {
		if x.Status == domain.AttemptAuthorized && x.PendingOp == domain.OpNone {
			a = x
		}
	}
	if a.ID == "" {
		return a, errs.New(errs.KindInternal, "payment %s in requires_capture has no authorized attempt", paymentID)
	}
	if op == domain.OpCapture {
		p.Captured = amount // the amount asked for; it counts once the processor confirms
	}
	p.Status = domain.PaymentProcessing
	if reason != domain.DeclineNone {
		p.DeclineReason = reason
	}
	if err := tx.SetPaymentStatus(ctx, &p, domain.PaymentRequiresCapture); err != nil {
		if isConflict(err) {
			return a, notCapturable(domain.PaymentProcessing)
		}
		return a, err
	}
	from := a
	a.PendingOp, a.NextLookupAt = op, tx.Now().Add(s.cfg.SettleAfter)
	if err := tx.UpdateAttempt(ctx, &a, from.Status, from.PendingOp); err != nil {
		if isConflict(err) {
			return a, notCapturable(domain.PaymentProcessing)
		}
		return a, err
	}
	return a, nil
}

func notCapturable(st domain.PaymentStatus) error {
	return &errs.Error{Kind: errs.KindFailedPrecondition, Field: "payment_id", Msg: "payment is " + string(st) + ", not requires_capture"}
}

// runCaptureOrVoid asks the processor to do the attempt's pending capture or void (again: the key is
// the same, so a repeat never acts twice) and records the verdict. notReached runs in the transaction
// that undoes the step when the processor was provably not reached.
func (s *Service) runCaptureOrVoid(ctx context.Context, a domain.Attempt, notReached func(*store.Tx) error) (domain.Payment, error) {
	// Past the processor or risk call the outcome must be recorded even if the client has gone.
	ctx = context.WithoutCancel(ctx)
	proc := s.procs[a.Processor]
	if proc == nil {
		return domain.Payment{}, errs.New(errs.KindUnavailable, "processor %q is not configured", a.Processor)
	}
	p, err := s.st.GetPayment(ctx, a.PaymentID)
	if err != nil {
		return p, err
	}
	pctx, cancel := s.procCtx(ctx)
	var res processor.Result
	if a.PendingOp == domain.OpCapture {
		res, err = proc.Capture(pctx, processor.CaptureRequest{Key: a.OpKey(domain.OpCapture), AuthorizeKey: a.ID,
			Money: processor.Money{Amount: p.Captured, Currency: p.Amount.Currency}})
	} else {
		res, err = proc.Void(pctx, processor.VoidRequest{Key: a.OpKey(domain.OpVoid), AuthorizeKey: a.ID})
	}
	cancel()
	verdict := resultStatus(res, err)
	// An expiry's void is decided: the payment never goes back to requires_capture, so a void that
	// did not reach the processor waits for the janitor's next try (with backoff) like a lost answer.
	// So does every re-send (notReached is nil: the janitor's): it may follow a call that acted with
	// its answer lost or its process killed, and a re-send not reaching the processor proves nothing
	// of that one.
	expiring := p.DeclineReason == domain.DeclineExpired
	if verdict == processor.Unknown || verdict == processor.NotReached && (expiring || notReached == nil) {
		s.log.Warn("processor outcome unknown or not reached; the janitor retries", "payment", p.ID, "op", a.PendingOp,
			"verdict", verdict.String(), "err", err)
		return p, nil
	}
	err = s.st.InTx(ctx, func(tx *store.Tx) error {
		cur, err := tx.Attempt(ctx, a.ID)
		if err != nil {
			return err
		}
		if cur.PendingOp != a.PendingOp {
			return nil
		}
		p, err := tx.Payment(ctx, a.PaymentID)
		if err != nil {
			return err
		}
		next := cur
		next.PendingOp, next.DeclineCode = domain.OpNone, res.DeclineCode
		if res.ProcessorRef != "" && next.ProcessorRef == "" {
			next.ProcessorRef = res.ProcessorRef
		}
		switch {
		case verdict == processor.NotReached:
			// Nothing happened: back to requires_capture, and the request's key is free again.
			p.Status, p.Captured = domain.PaymentRequiresCapture, 0
			if notReached != nil {
				if err := notReached(tx); err != nil {
					return err
				}
			}
		case verdict == processor.Approved && cur.PendingOp == domain.OpCapture:
			next.Status, p.Status = domain.AttemptCaptured, domain.PaymentSucceeded
		case verdict == processor.Approved:
			next.Status, p.Status = domain.AttemptVoided, domain.PaymentCanceled
		default: // declined: the authorization is gone (expired, refused)
			next.Status, p.Status = domain.AttemptFailed, domain.PaymentFailed
			p.Captured, p.DeclineReason, p.DeclineCode = 0, domain.ReasonForCode(res.DeclineCode), res.DeclineCode
		}
		if err := tx.UpdateAttempt(ctx, &next, cur.Status, cur.PendingOp); err != nil {
			return err
		}
		if err := tx.SetPaymentStatus(ctx, &p, domain.PaymentProcessing); err != nil {
			return err
		}
		if verdict == processor.NotReached {
			return nil
		}
		if err := s.afterPaymentChange(ctx, tx, p, next.Processor); err != nil {
			return err
		}
		method := MethodCapturePayment
		if cur.PendingOp == domain.OpVoid {
			method = MethodCancelPayment
		}
		return completeIn(ctx, tx, method, p)
	})
	if err != nil && !isConflict(err) {
		return p, err
	}
	if verdict == processor.NotReached {
		return p, errs.New(errs.KindUnavailable, "processor %s not reached; nothing was done, retry", a.Processor)
	}
	return s.st.GetPayment(ctx, a.PaymentID)
}
