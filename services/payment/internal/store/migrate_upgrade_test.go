package store

import (
	"context"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/sqldb"
)

// earlierMigrations is how many migrations the release before the janitor's partial indexes had
// (idempotency_in_flight, the drop of attempts_due, attempts_open came after).
const earlierMigrations = 32

// A database the earlier release created and wrote to takes the new migrations: the store opens
// on it, and the janitor's searches, now on the partial indexes, find the open work written
// before the upgrade. On SQLite and PostgreSQL.
func TestMigrationsUpgradeAnEarlierReleasesDatabase(t *testing.T) {
	forEachDialect(t, func(t *testing.T, url string) {
		ctx := context.Background()
		all := writeEarlierRelease(t, url, earlierMigrations, func(sqldb.Dialect) []string {
			return []string{
				`INSERT INTO payments (id, caller, account_id, amount, currency, method, capture_method, status, created_at, updated_at)
					VALUES ('pay_1', 'c', 'acct', 100, 'USD', 'card', 'automatic', 'processing', 1, 1)`,
				`INSERT INTO attempts (id, payment_id, processor, status, pending_op, next_lookup_at, created_at, updated_at)
					VALUES ('att_1', 'pay_1', 'p', 'pending', 'authorize', 1, 1, 1)`,
				`INSERT INTO idempotency (caller, idem_key, method, fingerprint, state, object_id, created_at)
					VALUES ('c', 'k1', 'CreatePayment', 'f', 'in_flight', 'pay_1', 1)`,
			}
		})

		s, err := Open(ctx, url)
		if err != nil {
			t.Fatalf("opening the earlier release's database: %v", err)
		}
		defer s.Close()
		now := time.Unix(0, 1000)
		keys, err := s.StaleKeys(ctx, now, StaleKey{}, 10)
		if err != nil || len(keys) != 1 || keys[0].Key != "k1" {
			t.Errorf("stale keys after the upgrade: %v %v, want k1", keys, err)
		}
		due, err := s.DueAttempts(ctx, now, now, 10)
		if err != nil || len(due) != 1 || due[0].ID != "att_1" {
			t.Errorf("due attempts after the upgrade: %v %v, want att_1", due, err)
		}
		wantSchemaVersion(t, s, all)
	})
}
