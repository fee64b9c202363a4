package store

import (
	"context"
	"testing"
	"time"
)

// A janitor lookup that reschedules an attempt (status and operation unchanged) between the claim
// and the request's verdict: the general path's settle keeps the janitor's lookups; a lane verdict
// must do the same, or not apply.
func TestLaneVerdictKeepsJanitorLookups(t *testing.T) {
	onBoth(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		d := laneDeposit(s, "lk", "k", 5)
		if ok, err := s.ClaimDeposit(ctx, d); !ok || err != nil {
			t.Fatal(ok, err)
		}
		if err := s.InTx(ctx, func(tx *Tx) error { // as the janitor's reschedule
			a, err := tx.Attempt(ctx, d.Attempt.ID)
			if err != nil {
				return err
			}
			from := a
			a.Lookups++
			a.NextLookupAt = tx.Now().Add(time.Minute)
			return tx.UpdateAttempt(ctx, &a, from.Status, from.PendingOp)
		}); err != nil {
			t.Fatal(err)
		}
		v := laneVerdict(s, d, true)
		applied, err := s.ApplyVerdict(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		if !applied {
			if err := settleGeneral(s, v); err != nil {
				t.Fatal(err)
			}
		}
		p, err := s.GetPayment(ctx, d.Payment.ID)
		if err != nil {
			t.Fatal(err)
		}
		if p.Attempts[0].Lookups != 1 {
			t.Fatalf("lane applied %v; stored attempt has %d lookups, want the janitor's 1", applied, p.Attempts[0].Lookups)
		}
	})
}
