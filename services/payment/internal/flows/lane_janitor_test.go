package flows

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/processor/instant"
	"github.com/bourse-dev/bourse/services/payment/internal/store"
)

// The janitor reschedules the attempt (its lookup could not reach the processor) while the request's
// authorization is out; the verdict written afterwards keeps the janitor's lookups, as the general
// path (settleAuthorize, which reads the attempt) does: a lane verdict that no longer matches the
// row is left to the general path.
func TestLaneVerdictKeepsJanitorReschedule(t *testing.T) {
	for name, lanes := range map[string]bool{"general": false, "lanes": true} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st, err := store.OpenWith(ctx, filepath.Join(t.TempDir(), "p.db"), store.Options{NoGroupCommit: !lanes})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			var mu sync.Mutex
			now := time.Now()
			st.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
			proc := instant.New("a")
			svc := New(Config{Store: st, Router: Static{proc}, Risk: newFakeRisk(), ProcessorTimeout: time.Second, SettleAfter: 5 * time.Second})
			var once sync.Once
			proc.SetFaults(func(c instant.Call) instant.Fault {
				if c.Lookup {
					return instant.FaultUnknownBefore // the janitor's lookup does not get through
				}
				once.Do(func() {
					mu.Lock()
					now = now.Add(6 * time.Second) // past the attempt's lookup time
					mu.Unlock()
					svc.JanitorPass(ctx) // reschedules it: lookups 1
				})
				return instant.FaultNone
			})
			p, _, err := svc.CreatePayment(ctx, "account:alice", "k", deposit(100, "tok"))
			if err != nil || p.Status != domain.PaymentSucceeded {
				t.Fatalf("%+v %v", p, err)
			}
			claims, verdicts := st.LaneWrites()
			if lanes && (claims != 1 || verdicts != 0) {
				t.Fatalf("lanes wrote %d claims and %d verdicts, want 1 and 0 (the verdict is the general path's)", claims, verdicts)
			}
			got, err := st.GetPayment(ctx, p.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Attempts[0].Lookups != 1 || p.Attempts[0].Lookups != 1 {
				t.Fatalf("attempt lookups %d stored, %d answered; want the janitor's 1", got.Attempts[0].Lookups, p.Attempts[0].Lookups)
			}
		})
	}
}
