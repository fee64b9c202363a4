package flows

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/processor"
	"github.com/bourse-dev/bourse/services/payment/internal/store"
)

// janitorBatch bounds the work of one janitor pass per kind.
const janitorBatch = 100

// RunJanitor settles what requests left open, every interval, until ctx ends: attempts whose outcome
// is UNKNOWN (looked up at the processor with backoff), captures and voids in flight, payments a
// request abandoned before any attempt, authorizations left uncaptured past the capture window, refund and payout sagas whose next step is due, idempotency
// records of requests that died, and records past retention. It is safe to run on every replica at
// once (see the package comment). The caller owns the goroutine; it returns when ctx ends.
func (s *Service) RunJanitor(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.JanitorPass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// JanitorPass runs one pass (tests call it directly).
func (s *Service) JanitorPass(ctx context.Context) {
	now := s.st.Now()
	if atts, err := s.st.DueAttempts(ctx, now, now, janitorBatch); err != nil {
		s.log.Warn("janitor: due attempts", "err", err)
	} else {
		for _, a := range atts {
			s.settleAttempt(ctx, a)
		}
	}
	if ps, err := s.st.StalledPayments(ctx, now.Add(-s.cfg.SettleAfter), janitorBatch); err != nil {
		s.log.Warn("janitor: stalled payments", "err", err)
	} else {
		for _, p := range ps {
			// Every attempt is final and none succeeded: nothing was charged.
			if _, err := s.failPayment(ctx, p.ID, domain.DeclineProcessorUnavailable, "", p.FraudScore); err != nil {
				s.log.Warn("janitor: failing a stalled payment", "payment", p.ID, "err", err)
			}
		}
	}
	s.expireAuthorizations(ctx, now)
	if rs, err := s.st.DueRefunds(ctx, now, now, janitorBatch); err != nil {
		s.log.Warn("janitor: due refunds", "err", err)
	} else {
		for _, r := range rs {
			if _, err := s.advanceRefund(ctx, r); err != nil {
				s.log.Warn("janitor: refund", "refund", r.ID, "err", err)
			}
		}
	}
	if xs, err := s.st.DuePayouts(ctx, now, now, janitorBatch); err != nil {
		s.log.Warn("janitor: due payouts", "err", err)
	} else {
		for _, x := range xs {
			if _, err := s.advancePayout(ctx, x); err != nil {
				s.log.Warn("janitor: payout", "payout", x.ID, "err", err)
			}
		}
	}
	s.completeStaleKeys(ctx, now)
	if n, err := s.st.PruneKeys(ctx, now.Add(-s.cfg.Retention)); err != nil {
		s.log.Warn("janitor: pruning idempotency records", "err", err)
	} else if n > 0 {
		s.log.Info("janitor: idempotency records pruned", "count", n)
	}
}

// settleAttempt resolves an attempt's open operation.
func (s *Service) settleAttempt(ctx context.Context, a domain.Attempt) {
	proc := s.procs[a.Processor]
	if proc == nil {
		s.log.Error("janitor: attempt's processor is not configured", "attempt", a.ID, "processor", a.Processor)
		s.reschedule(ctx, a)
		return
	}
	if a.PendingOp != domain.OpAuthorize {
		// A capture or void: ask again with the same key; the processor answers the first outcome.
		if _, err := s.runCaptureOrVoid(ctx, a, nil); err != nil {
			s.log.Warn("janitor: capture/void", "attempt", a.ID, "err", err)
		}
		if cur, err := s.st.GetPayment(ctx, a.PaymentID); err == nil {
			for _, x := range cur.Attempts {
				if x.ID == a.ID && x.PendingOp == a.PendingOp {
					s.reschedule(ctx, x)
				}
			}
		}
		return
	}
	lctx, cancel := s.procCtx(ctx)
	res, err := proc.Lookup(lctx, processor.OpAuthorize, a.ID)
	cancel()
	if err != nil {
		res.Status = processor.Unknown
	}
	switch res.Status {
	case processor.Approved, processor.Declined, processor.NotFound:
		// NotFound after the call's deadline has passed: the authorization never happened, and never will.
		s.log.Info("janitor: attempt settled by lookup", "attempt", a.ID, "payment", a.PaymentID, "verdict", res.Status.String())
		if _, err := s.settleAuthorize(ctx, a, res.Status, res); err != nil {
			s.log.Warn("janitor: settling attempt", "attempt", a.ID, "err", err)
		}
	default:
		s.reschedule(ctx, a)
	}
}

// reschedule pushes an attempt's next lookup out with backoff.
func (s *Service) reschedule(ctx context.Context, a domain.Attempt) {
	err := s.st.InTx(ctx, func(tx *store.Tx) error {
		from := a
		a.Lookups++
		a.NextLookupAt = tx.Now().Add(s.backoff(a.Lookups))
		return tx.UpdateAttempt(ctx, &a, from.Status, from.PendingOp)
	})
	if err != nil && !isConflict(err) {
		s.log.Warn("janitor: rescheduling lookup", "attempt", a.ID, "err", err)
	}
}

// completeStaleKeys finishes the idempotency records of requests that died, once their object has
// settled, so the client's retry gets the outcome instead of idempotency_key_in_use forever.
//
// Each pass looks at the next janitorBatch records after those the last pass looked at, starting
// over after the newest: records whose object has not settled yet (a payout waiting for risk, an
// attempt's lookup backing off) are passed over, never looked at again and again while the records
// behind them wait.
func (s *Service) completeStaleKeys(ctx context.Context, now time.Time) {
	from := s.staleFrom.get()
	keys, err := s.st.StaleKeys(ctx, now.Add(-s.cfg.SettleAfter), from, janitorBatch)
	if err != nil {
		s.log.Warn("janitor: stale idempotency records", "err", err)
		return
	}
	next := store.StaleKey{}
	if len(keys) == janitorBatch {
		next = keys[len(keys)-1]
	}
	s.staleFrom.set(next)
	for _, k := range keys {
		var obj any
		settled := false
		switch k.Method {
		case MethodCreatePayment, MethodCapturePayment, MethodCancelPayment:
			p, err := s.st.GetPayment(ctx, k.ObjectID)
			obj, settled = p, err == nil && p.Status != domain.PaymentProcessing
		case MethodRefundPayment:
			r, err := s.st.GetRefund(ctx, k.ObjectID)
			obj, settled = r, err == nil && (r.Status == domain.RefundSucceeded || r.Status == domain.RefundFailed)
		case MethodCreatePayout:
			x, err := s.st.GetPayout(ctx, k.ObjectID)
			obj, settled = x, err == nil && (x.Status == domain.PayoutSucceeded || x.Status == domain.PayoutFailed)
		}
		if !settled {
			continue
		}
		b, err := json.Marshal(obj)
		if err != nil {
			continue
		}
		if err := s.st.InTx(ctx, func(tx *store.Tx) error { return tx.CompleteKey(ctx, k.Caller, k.Key, b, nil) }); err != nil {
			s.log.Warn("janitor: completing an idempotency record", "err", err)
		}
	}
}

// staleCursor is the janitor's place among the stale idempotency records. JanitorPass may run on
// several goroutines (RunJanitor's and tests'): the place is shared under mu.
type staleCursor struct {
	mu   sync.Mutex
	next store.StaleKey
}

func (c *staleCursor) get() store.StaleKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.next
}

func (c *staleCursor) set(k store.StaleKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next = k
}
