package store

import (
	"context"
	"testing"
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
