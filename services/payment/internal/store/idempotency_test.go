package store

import (
	"context"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/payment/internal/idempotency"
)

// FinishedKey answers only what a claim would replay as it stands: a finished record within its
// retention, with its response or its error. A missing, in-flight or expired record is left to the
// claim.
func TestFinishedKey(t *testing.T) {
	onBoth(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Now()
		s.SetClock(func() time.Time { return now })
		const retention = 24 * time.Hour
		for _, key := range []string{"ok", "failed", "inflight"} {
			err := s.InTx(ctx, func(tx *Tx) error {
				_, _, err := tx.ClaimKey(ctx, idempotency.Record{Caller: "c", Key: key, Method: "m", Fingerprint: "f", State: idempotency.InFlight,
					ObjectID: "obj-" + key}, retention)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		err := s.InTx(ctx, func(tx *Tx) error {
			if err := tx.CompleteKey(ctx, "c", "ok", []byte(`{"id":"obj-ok"}`), nil); err != nil {
				return err
			}
			return tx.CompleteKey(ctx, "c", "failed", nil, errs.New(errs.KindFailedPrecondition, "declined"))
		})
		if err != nil {
			t.Fatal(err)
		}
		finished := func(key string) (idempotency.Record, bool) {
			t.Helper()
			rec, found, err := s.FinishedKey(ctx, "c", key, retention)
			if err != nil {
				t.Fatal(err)
			}
			return rec, found
		}
		if rec, found := finished("ok"); !found || string(rec.Response) != `{"id":"obj-ok"}` || rec.ObjectID != "obj-ok" ||
			rec.Method != "m" || rec.Fingerprint != "f" || rec.Check("m", "f") != nil {
			t.Fatalf("finished record: found %v, %+v", found, rec)
		}
		if rec, found := finished("failed"); !found || errs.KindOf(rec.Check("m", "f")) != errs.KindFailedPrecondition {
			t.Fatalf("finished failure: found %v, %+v", found, rec)
		}
		for _, key := range []string{"inflight", "missing"} {
			if rec, found := finished(key); found {
				t.Fatalf("%s key answered as finished: %+v", key, rec)
			}
		}
		if _, found, err := s.FinishedKey(ctx, "other-caller", "ok", retention); found || err != nil {
			t.Fatalf("another caller's key: found %v, %v", found, err)
		}
		now = now.Add(retention)
		if rec, found := finished("ok"); found {
			t.Fatalf("expired record answered: %+v", rec)
		}
	})
}
