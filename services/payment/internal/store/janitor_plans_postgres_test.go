package store

import (
	"strings"
	"testing"

	"github.com/bourse-dev/bourse/pkg/testenv"
)

// On PostgreSQL the janitor's statements are prepared, so they run on a generic plan once the
// planner prefers it: the partial indexes must match the statements' text with their parameters
// unknown. With most rows closed and a few open, the generic plan of each search reads its
// partial index in the order it lists, with no scan of the table and no sort.
func TestJanitorSearchesReadOpenWorkIndexesOnPostgres(t *testing.T) {
	s := openStore(t, testenv.StartPostgres(t), Options{})
	conn := postgresConn(t, s,
		`INSERT INTO payments (id, caller, account_id, amount, currency, method, capture_method, status, created_at, updated_at)
			SELECT 'pay_' || g, 'c', 'acct', 100, 'USD', 'card', 'automatic', 'succeeded', g, g FROM generate_series(1, 50000) g`,
		`INSERT INTO attempts (id, payment_id, processor, status, pending_op, next_lookup_at, created_at, updated_at)
			SELECT 'att_' || g, 'pay_' || g, 'p', 'succeeded', CASE WHEN g % 1000 = 0 THEN 'capture' ELSE '' END, g, g, g
			FROM generate_series(1, 50000) g`,
		`INSERT INTO idempotency (caller, idem_key, method, fingerprint, state, created_at)
			SELECT 'c', 'k' || g, 'CreatePayment', 'f', CASE WHEN g % 1000 = 0 THEN 'in_flight' ELSE 'done' END, g
			FROM generate_series(1, 50000) g`,
		`ANALYZE`,
		`SET plan_cache_mode = force_generic_plan`,
	)
	for _, tc := range []struct{ name, query, index, args string }{
		{"StaleKeys", staleKeysQuery, "idempotency_in_flight", "(60000, 0, '', '', 100)"},
		{"DueAttempts", dueAttemptsQuery, "attempts_open", "(60000, 60000, 100)"},
	} {
		text := strings.Join(genericPlan(t, s, conn, strings.ToLower(tc.name), tc.query, tc.args), "\n")
		if !strings.Contains(text, " using "+tc.index+" ") || strings.Contains(text, "Seq Scan") || strings.Contains(text, "Sort") {
			t.Errorf("%s: generic plan\n%s\nwant a search of %s, no scan, no sort", tc.name, text, tc.index)
		}
	}
}
