package flows

import (
	"context"
	"encoding/json"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/bourse-dev/bourse/services/payment/internal/store"
)

// DefaultOutboxLease is how long a claimed outbox item is left to its claimer before another replica
// (or this one after a crash) may deliver it again (Config.OutboxLease). Risk dedupes by ref, so a
// second delivery is harmless; the lease only keeps replicas from doing the same work at once. It
// is also how long an item waits whose claimer died, or lost the database, before finishing it.
const DefaultOutboxLease = 30 * time.Second

// RunOutbox delivers outbox items every interval until ctx ends. The caller owns the goroutine.
func (s *Service) RunOutbox(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		for s.OutboxPass(ctx) == janitorBatch && ctx.Err() == nil {
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// OutboxPass delivers the items due now and reports how many it claimed.
func (s *Service) OutboxPass(ctx context.Context) int {
	items, err := s.st.ClaimOutbox(ctx, janitorBatch, s.cfg.OutboxLease)
	if err != nil {
		s.log.Warn("outbox: claim", "err", err)
		return 0
	}
	for _, it := range items {
		s.deliver(ctx, it)
	}
	return len(items)
}

func (s *Service) deliver(ctx context.Context, it store.OutboxItem) {
	if it.Kind != OutboxRiskCredit {
		s.log.Error("outbox: unknown item kind; left in place", "kind", it.Kind, "id", it.ID)
		return
	}
	var c RiskCredit
	if err := json.Unmarshal(it.Payload, &c); err != nil {
		s.log.Error("outbox: unreadable item; left in place", "id", it.ID, "err", err)
		return
	}
	if len(c.Trace) > 0 {
		ctx = propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier(c.Trace))
	}
	rctx, cancel := s.riskCtx(ctx)
	err := s.cfg.Risk.Credit(rctx, c.AccountID, c.Asset, c.Amount, c.PaymentID)
	cancel()
	if err != nil {
		// A refusal (unknown account or asset) cannot be dropped either: the money was captured. It
		// is retried with backoff and logged loudly until an operator fixes risk's side.
		if refusal(err) {
			s.log.Error("outbox: risk refused a deposit's credit; retrying with backoff", "payment", c.PaymentID, "err", err)
		} else {
			s.log.Warn("outbox: risk credit failed; retrying", "payment", c.PaymentID, "err", err)
		}
		if err := s.st.RetryOutbox(ctx, it.ID, s.st.Now().Add(s.backoff(it.Tries)), err.Error()); err != nil {
			s.log.Warn("outbox: scheduling retry", "err", err)
		}
		return
	}
	if err := s.st.FinishOutbox(ctx, it.ID, func(tx *store.Tx) error { return tx.MarkRiskCredited(ctx, c.PaymentID) }); err != nil {
		s.log.Warn("outbox: finishing a delivered item (it will be delivered again, harmlessly)", "id", it.ID, "err", err)
	}
}
