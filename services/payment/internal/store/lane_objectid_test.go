package store

import (
	"context"
	"testing"

	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/idempotency"
)

// A claim the lane does not make (claimed false) writes nothing, whatever the claim names: here
// a key record naming another object than the claim's payment.
func TestLaneRefusedClaimWritesNoKey(t *testing.T) {
	onBoth(t, func(t *testing.T, s *Store) {
		d := laneDeposit(s, "om", "k", 5)
		d.Key.ObjectID = "pay_other"
		ok, err := s.ClaimDeposit(context.Background(), d)
		if ok {
			t.Fatal("claimed a key naming another payment")
		}
		if rec := keyRecord(t, s, d.Key.Caller, d.Key.Key); rec.Method != "" {
			t.Fatalf("refused claim (err %v) left the key record %+v: the key is in use until the janitor finds it", err, rec)
		}
	})
}

// The lane's claim statements write a deposit just begun, its constant columns as literals; a
// claim of anything else (scored, declined, an attempt already looked up, ...) is not made, so that
// the general path writes it as given, and the lane writes nothing of it.
func TestLaneClaimsOnlyFreshDeposits(t *testing.T) {
	cases := map[string]func(d *NewDeposit){
		"scored": func(d *NewDeposit) { d.Payment.FraudScore = 0.25 },
		"declined": func(d *NewDeposit) {
			d.Payment.DeclineReason, d.Payment.Status = domain.DeclineFraudSuspected, domain.PaymentFailed
		},
		"captured":          func(d *NewDeposit) { d.Payment.Captured = 5 },
		"risk credited":     func(d *NewDeposit) { d.Payment.RiskCredited = true },
		"key done":          func(d *NewDeposit) { d.Key.State = idempotency.Done },
		"attempt looked up": func(d *NewDeposit) { d.Attempt.Lookups = 2 },
		"attempt unknown":   func(d *NewDeposit) { d.Attempt.Status = domain.AttemptUnknown },
		"attempt has ref":   func(d *NewDeposit) { d.Attempt.ProcessorRef = "ch_1" },
	}
	onBoth(t, func(t *testing.T, s *Store) {
		for name, mutate := range cases {
			d := laneDeposit(s, "fresh", name, 5)
			mutate(d)
			ok, err := s.ClaimDeposit(context.Background(), d)
			if ok || err != nil {
				t.Fatalf("%s: claimed %v, err %v; want not claimed, no error", name, ok, err)
			}
			if rec := keyRecord(t, s, d.Key.Caller, d.Key.Key); rec.Method != "" {
				t.Fatalf("%s: the lane wrote the key record %+v", name, rec)
			}
			if n := count(t, s, `SELECT COUNT(*) FROM payments WHERE id = ?`, d.Payment.ID); n != 0 {
				t.Fatalf("%s: the lane wrote the payment", name)
			}
		}
		// The same deposit unchanged is claimed.
		if ok, err := s.ClaimDeposit(context.Background(), laneDeposit(s, "fresh", "as begun", 5)); !ok || err != nil {
			t.Fatalf("a fresh deposit: claimed %v, err %v", ok, err)
		}
	})
}
