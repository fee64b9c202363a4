package flows

import (
	"context"
	"encoding/json"
	"time"

	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/ledger"
	"github.com/bourse-dev/bourse/services/payment/internal/store"
)

// What the refund and the payout saga (sagas.go) share: their arrows at risk and how a step is
// recorded.

// replayed is the answer of a request whose claim found its key used: the saved result (decoded
// into T) or the claim's error.
func replayed[T any](replay []byte, err error) (T, bool, error) {
	var got T
	if err == nil {
		err = json.Unmarshal(replay, &got)
	}
	return got, err == nil, err
}

// runClaimed runs the steps of an object the request has just created under its key and saves
// where they got to as the key's result (a step that waits is finished by the janitor).
func runClaimed[T any](ctx context.Context, s *Service, caller, key string, obj T, advance func(context.Context, T) (T, error)) (T, bool, error) {
	out, err := advance(ctx, obj)
	if err != nil {
		return out, false, err
	}
	s.complete(ctx, caller, key, out)
	return out, false, nil
}

// riskVerdict is risk's answer to a saga's Debit or Credit.
type riskVerdict int

const (
	riskApplied  riskVerdict = iota
	riskRefused              // final: unknown account or asset, not enough free balance (riskCode says which)
	riskNoAnswer             // try again later with the same ref
)

// atRisk moves m on account at risk (move is Risk.Debit or Risk.Credit) under ref.
func (s *Service) atRisk(ctx context.Context, move func(ctx context.Context, account, asset, amount, ref string) error,
	account string, m domain.Money, ref string) (riskVerdict, error) {
	rctx, cancel := s.riskCtx(ctx)
	err := move(rctx, account, m.Currency, domain.Decimal(m), ref)
	cancel()
	switch {
	case err == nil:
		return riskApplied, nil
	case refusal(err):
		return riskRefused, err
	}
	return riskNoAnswer, err
}

// creditBack is the last arrow of a saga whose money did not leave: risk.Credit with ref
// "<id>:reversal". false: not done (no answer, or a refusal an operator must look at); the step
// waits and is tried again.
func (s *Service) creditBack(ctx context.Context, what, id, account string, m domain.Money) bool {
	if _, err := s.atRisk(ctx, s.cfg.Risk.Credit, account, m, id+":reversal"); err != nil {
		s.log.Warn("risk credit of a "+what+"'s reversal failed; retrying later", what, id, "err", err)
		return false
	}
	return true
}

// sagaStep is one step of a saga as it is recorded: in one transaction, the object's next try
// (after SettleAfter, or with backoff when the step must wait), its compare-and-set update, the
// ledger transaction the step caused, what the new status causes, and its event.
type sagaStep struct {
	wait       bool                // no answer: try again later
	post       *ledger.Transaction // nil: the step moved no money
	lookups    *int                // waits in a row, for the backoff
	nextStepAt *time.Time
	update     func(*store.Tx) error // the object's compare-and-set
	also       func(*store.Tx) error // optional
	event      string                // the new status's event type; "" when the status did not change
	account    string
	id         string
	obj        any // a pointer to the object, marshalled into the event once the writes above are done
}

func (s *Service) save(ctx context.Context, st sagaStep) error {
	if st.wait {
		*st.lookups++
	} else {
		*st.lookups = 0
	}
	return s.st.InTx(ctx, func(tx *store.Tx) error {
		*st.nextStepAt = tx.Now().Add(s.cfg.SettleAfter)
		if st.wait {
			*st.nextStepAt = tx.Now().Add(s.backoff(*st.lookups))
		}
		if err := st.update(tx); err != nil {
			return err
		}
		if st.post != nil {
			if err := tx.Post(ctx, *st.post); err != nil {
				return err
			}
		}
		if st.also != nil {
			if err := st.also(tx); err != nil {
				return err
			}
		}
		if st.event == "" {
			return nil
		}
		return tx.AddEvent(ctx, st.event, st.account, st.id, st.obj)
	})
}
