package store

import (
	"context"
	"strings"
	"testing"

	"github.com/bourse-dev/bourse/pkg/testenv"
)

// On PostgreSQL the janitor's statements are prepared, so they run on a generic plan once the
// planner prefers it: the partial indexes must match the statements' text with their parameters
// unknown. With most rows closed and a few open, the generic plan of each search reads its
// partial index in the order it lists, with no scan of the table and no sort.
func TestJanitorSearchesReadOpenWorkIndexesOnPostgres(t *testing.T) {
	s, err := Open(context.Background(), testenv.StartPostgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{
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
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, tc := range []struct{ name, query, index, args string }{
		{"StaleKeys", staleKeysQuery, "idempotency_in_flight", "(60000, 0, '', '', 100)"},
		{"DueAttempts", dueAttemptsQuery, "attempts_open", "(60000, 60000, 100)"},
	} {
		name := strings.ToLower(tc.name)
		if _, err := conn.ExecContext(ctx, `PREPARE `+name+` AS `+s.db.Rebind(tc.query)); err != nil {
			t.Fatal(err)
		}
		rows, err := conn.QueryContext(ctx, `EXPLAIN EXECUTE `+name+tc.args)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, line)
		}
		rows.Close()
		text := strings.Join(plan, "\n")
		if !strings.Contains(text, " using "+tc.index+" ") || strings.Contains(text, "Seq Scan") || strings.Contains(text, "Sort") {
			t.Errorf("%s: generic plan\n%s\nwant a search of %s, no scan, no sort", tc.name, text, tc.index)
		}
	}
}
