package flows

import (
	"context"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/store"
)

// DefaultCaptureWindow is how long an uncaptured authorization is kept: Stripe cancels an
// uncaptured PaymentIntent after 7 days, and card networks release the hold around then anyway.
const DefaultCaptureWindow = 7 * 24 * time.Hour

// expireAuthorizations voids the authorizations of manual-capture payments created more than the
// capture window ago and still waiting in requires_capture, and cancels them (reason expired).
// The void goes the way CancelPayment's does (key <attempt id>:void): the payment stays processing
// until the processor has voided, and a void that fails technically is retried by the janitor with
// backoff, so a payment is never canceled while its authorization still holds the customer's money.
func (s *Service) expireAuthorizations(ctx context.Context, now time.Time) {
	ps, err := s.st.ExpiredAuthorizations(ctx, now.Add(-s.cfg.CaptureWindow), janitorBatch)
	if err != nil {
		s.log.Warn("janitor: expired authorizations", "err", err)
		return
	}
	for _, p := range ps {
		if err := s.expire(ctx, p.ID); err != nil {
			s.log.Warn("janitor: expiring an authorization", "payment", p.ID, "err", err)
		}
	}
}

// expire starts and runs the void of one expired authorization. A capture or cancel that began
// first wins (beginCaptureOrVoid is a compare-and-set): the expiry then does nothing.
func (s *Service) expire(ctx context.Context, paymentID string) error {
	var a domain.Attempt
	err := s.st.InTx(ctx, func(tx *store.Tx) error {
		var err error
		a, err = s.beginCaptureOrVoid(ctx, tx, paymentID, 0, domain.OpVoid, domain.DeclineExpired)
		return err
	})
	if err != nil {
		if isConflict(err) || errs.KindOf(err) == errs.KindFailedPrecondition {
			return nil
		}
		return err
	}
	s.log.Info("janitor: authorization expired uncaptured; voiding it", "payment", paymentID, "attempt", a.ID)
	_, err = s.runCaptureOrVoid(ctx, a, nil)
	return err
}
