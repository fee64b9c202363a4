package store

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/bourse-dev/bourse/pkg/sqldb"
)

// planFill is how many rows each big table gets before the plans are read. SQLite keeps no
// statistics here (the store never runs ANALYZE): its choice does not depend on the size, and a few
// thousand rows show it. PostgreSQL plans by cost over what ANALYZE found: at 3,000 rows a hash join
// over a scan of the whole table is rightly the cheaper way to match 16 or more rows (measured: it
// is what it chooses), so the table must be as large as the scan costs more than an index probe for
// each row of a full statement (128 rows; from about 30,000 rows on).
func planFill(d sqldb.Dialect) int {
	if d == sqldb.Postgres {
		return 30000
	}
	return 3000
}

// fillForPlans inserts planFill payments (each with an attempt and an in-flight key) and as many
// webhook endpoints, in a few statements of the store's schema.
func fillForPlans(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	seq := fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d) `, planFill(s.Dialect()))
	for _, q := range []string{
		seq + `INSERT INTO payments (` + paymentCols + `) SELECT 'pay_fill_' || i, 'account:fill', 'fill_' || (i % 50), 100, 'USD', 'card',
			'automatic', 'processing', 0, 0, 0, '', '', 0, '{}', 0, i, i FROM n`,
		seq + `INSERT INTO attempts (` + attemptCols + `) SELECT 'att_fill_' || i, 'pay_fill_' || i, 'acquirer', 'pending', 'authorize',
			'', '', 0, i, i, i FROM n`,
		seq + `INSERT INTO idempotency (caller, idem_key, method, fingerprint, state, object_id, created_at)
			SELECT 'account:fill', 'key_' || i, 'CreatePayment', 'f', 'in_flight', 'pay_fill_' || i, i FROM n`,
		seq + `INSERT INTO webhook_endpoints (id, caller, account_id, url, event_types, secret, created_at)
			SELECT 'we_fill_' || i, 'account:x', 'fill_' || i, 'https://127.0.0.1/', '[]', 's', i FROM n`,
	} {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if s.Dialect() == sqldb.Postgres {
		if _, err := s.db.ExecContext(ctx, `ANALYZE`); err != nil {
			t.Fatal(err)
		}
	}
}

// plan is the engine's plan of st's statement for rows (as a lane runs it), one line per step.
func plan(t *testing.T, s *Store, st *setStmt, rows [][]any) []string {
	t.Helper()
	a := st.args(len(rows))
	for _, r := range rows {
		a.add(r...)
	}
	var lines []string
	err := a.each(func(q string, args []any) error {
		explain := "EXPLAIN QUERY PLAN "
		if s.Dialect() == sqldb.Postgres {
			explain = "EXPLAIN "
		}
		r, err := s.db.QueryContext(context.Background(), s.db.Rebind(explain+q), args...)
		if err != nil {
			return err
		}
		defer r.Close()
		for r.Next() {
			var line string
			if s.Dialect() == sqldb.Postgres {
				err = r.Scan(&line)
			} else {
				var id, parent, unused int
				err = r.Scan(&id, &parent, &unused, &line)
			}
			if err != nil {
				return err
			}
			lines = append(lines, strings.TrimSpace(line))
		}
		return r.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

// The lanes' compare-and-set updates and their endpoint lookup reach the big table's rows through
// its primary key or an index, never by scanning it: a scan would make every batch cost as much as
// the table is large.
func TestLanePlansUseIndexes(t *testing.T) {
	onBoth(t, func(t *testing.T, s *Store) {
		fillForPlans(t, s)
		st := s.laneSQL
		rowsOf := func(n int, row func(i int) []any) [][]any {
			out := make([][]any, n)
			for i := range out {
				out[i] = row(i + 1)
			}
			return out
		}
		cases := []struct {
			name, table, alias string
			st                 *setStmt
			row                func(i int) []any
		}{
			{"updAttempts", "attempts", "attempts", st.updAttempts, func(i int) []any {
				return []any{fmt.Sprint("att_fill_", i), "captured", "", "ref", "", 0, 0, 1, "pending", "authorize"}
			}},
			{"updPayments", "payments", "payments", st.updPayments, func(i int) []any {
				return []any{fmt.Sprint("pay_fill_", i), "succeeded", 100, "", "", 0.0, 1, "processing"}
			}},
			{"completeKeys", "idempotency", "idempotency", st.completeKeys, func(i int) []any {
				return []any{"account:fill", fmt.Sprint("key_", i), fmt.Sprint("pay_fill_", i), "CreatePayment", "{}"}
			}},
			{"endpoints", "webhook_endpoints", "w", st.endpoints, func(i int) []any { return []any{fmt.Sprint("fill_", i)} }},
		}
		for _, c := range cases {
			for _, n := range []int{1, 3, 16, maxSetRows} {
				lines := plan(t, s, c.st, rowsOf(n, c.row))
				text := strings.Join(lines, "\n")
				if s.Dialect() == sqldb.Postgres {
					onTable := `on ` + c.table + `(\s+` + c.alias + `)?(\s|$)`
					if regexp.MustCompile(`Seq Scan `+onTable).MatchString(text) ||
						!regexp.MustCompile(`Index (Only )?Scan using \S+ `+onTable).MatchString(text) {
						t.Errorf("%s of %d rows: the plan does not probe %s by an index:\n%s", c.name, n, c.table, text)
					}
					continue
				}
				// SQLite names a table by its alias when it has one.
				if regexp.MustCompile(`(?m)^SCAN (` + c.table + `|` + c.alias + `)\b`).MatchString(text) {
					t.Errorf("%s of %d rows scans %s:\n%s", c.name, n, c.table, text)
				}
				if !regexp.MustCompile(`(?m)^SEARCH (` + c.table + `|` + c.alias + `) USING `).MatchString(text) {
					t.Errorf("%s of %d rows does not search %s by an index:\n%s", c.name, n, c.table, text)
				}
			}
		}
	})
}
