package store

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/services/payment/internal/idempotency"
)

// StaleKeys pages through the in-flight records older than its bound, oldest first, each once, from
// the one after its cursor: records finished or too new are never listed, and records created in
// the same nanosecond are told apart by caller and key.
func TestStaleKeysPagesInFlightRecords(t *testing.T) {
	onBoth(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		base := time.Unix(1_700_000_000, 0)
		var want []string
		for i := range 12 {
			at := base.Add(time.Duration(i/2) * time.Second) // two records a second
			s.SetClock(func() time.Time { return at })
			key := fmt.Sprintf("k%02d", i)
			state := "in-flight"
			if err := s.InTx(ctx, func(tx *Tx) error {
				_, _, err := tx.ClaimKey(ctx, idempotency.Record{Caller: "account:a", Key: key, Method: "CreatePayment", Fingerprint: "f",
					State: idempotency.InFlight, ObjectID: "pay_" + key}, time.Hour)
				if err == nil && i%3 == 0 {
					state, err = "done", tx.CompleteKey(ctx, "account:a", key, []byte(`{}`), nil)
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if state == "in-flight" && i < 10 { // the last second's are too new
				want = append(want, key)
			}
		}
		olderThan := base.Add(4 * time.Second)
		var got []string
		for from, pages := (StaleKey{}), 0; ; pages++ {
			if pages > len(want) {
				t.Fatalf("more pages than records: %v", got)
			}
			ks, err := s.StaleKeys(ctx, olderThan, from, 2)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range ks {
				if k.ObjectID != "pay_"+k.Key || k.Method != "CreatePayment" || k.Caller != "account:a" {
					t.Fatalf("record %+v", k)
				}
				got = append(got, k.Key)
			}
			if len(ks) < 2 {
				break
			}
			from = ks[len(ks)-1]
		}
		if !slices.Equal(got, want) {
			t.Fatalf("stale keys %v, want %v", got, want)
		}
	})
}
