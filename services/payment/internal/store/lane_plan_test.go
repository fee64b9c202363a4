package store

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/sqldb"
)

// planFill is how many rows each big table gets before the plans are read: enough that probing it by
// key for the largest batch costs less than scanning it (at 3,000 rows PostgreSQL rightly hash-joins
// a scan of the table to 16 or more rows of v; SQLite, which plans without statistics, probes by key
// at any size).
func planFill(d sqldb.Dialect) int {
	if d == sqldb.Postgres {
		return 50000
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

// plan is the engine's plan of st's statement for rows as a lane runs it, one line per step. On
// PostgreSQL both the plan for the statement's values and the generic plan a prepared statement
// settles on after a few runs (the one made for any values).
func plan(t *testing.T, s *Store, st *setStmt, rows [][]any) (custom, generic []string) {
	t.Helper()
	ctx := context.Background()
	a := st.args(len(rows))
	for _, r := range rows {
		a.add(r...)
	}
	lines := func(r *sql.Rows, err error) ([]string, error) {
		if err != nil {
			return nil, err
		}
		defer r.Close()
		var out []string
		for r.Next() {
			var line string
			if s.Dialect() == sqldb.Postgres {
				err = r.Scan(&line)
			} else {
				var id, parent, unused int
				err = r.Scan(&id, &parent, &unused, &line)
			}
			if err != nil {
				return nil, err
			}
			out = append(out, strings.TrimSpace(line))
		}
		return out, r.Err()
	}
	err := a.each(func(q string, args []any) error {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback() //nolint:errcheck // read only
		if s.Dialect() != sqldb.Postgres {
			c, err := lines(tx.QueryContext(ctx, s.db.Rebind("EXPLAIN QUERY PLAN "+q), args...))
			custom = append(custom, c...)
			return err
		}
		c, err := lines(tx.QueryContext(ctx, s.db.Rebind("EXPLAIN "+q), args...))
		if err != nil {
			return err
		}
		custom = append(custom, c...)
		if _, err := tx.ExecContext(ctx, `PREPARE lane_plan AS `+s.db.Rebind(q)); err != nil {
			return err
		}
		defer tx.ExecContext(ctx, `DEALLOCATE lane_plan`) //nolint:errcheck // a prepared statement outlives the transaction
		if _, err := tx.ExecContext(ctx, `SET LOCAL plan_cache_mode = force_generic_plan`); err != nil {
			return err
		}
		nulls := strings.TrimSuffix(strings.Repeat("NULL,", len(args)), ",")
		g, err := lines(tx.QueryContext(ctx, `EXPLAIN EXECUTE lane_plan(`+nulls+`)`))
		generic = append(generic, g...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return custom, generic
}

// The lanes' compare-and-set updates and their endpoint lookup reach the big table's rows through
// its primary key or an index, never by scanning it: a scan would make every batch cost as much as
// the table is large. Checked on empty tables (a plan made then may be kept) and after planFill
// rows (and, on PostgreSQL, an ANALYZE). PostgreSQL rightly scans an empty table, and a
// plan it cached then is made again once the table is analyzed (TestLanesHaveTheTablesAnalyzed):
// there only the filled tables' plans are checked.
func TestLanePlansUseIndexes(t *testing.T) {
	onBoth(t, func(t *testing.T, s *Store) {
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
		for _, when := range []string{"empty", "filled"} {
			if when == "filled" {
				fillForPlans(t, s)
			}
			if when == "empty" && s.Dialect() == sqldb.Postgres {
				continue
			}
			for _, c := range cases {
				for _, n := range []int{1, 3, 16, maxSetRows} {
					custom, generic := plan(t, s, c.st, rowsOf(n, c.row))
					if s.Dialect() == sqldb.Postgres {
						onTable := `on ` + c.table + `(\s+` + c.alias + `)?(\s|$)`
						for kind, lines := range map[string][]string{"values'": custom, "generic": generic} {
							text := strings.Join(lines, "\n")
							// A bitmap heap scan reads only the pages its index scan found.
							if regexp.MustCompile(`Seq Scan `+onTable).MatchString(text) ||
								!regexp.MustCompile(`(Index (Only )?Scan using \S+|Bitmap Heap Scan) `+onTable).MatchString(text) {
								t.Errorf("%s, %s of %d rows: the %s plan does not probe %s by an index:\n%s", when, c.name, n, kind, c.table, text)
							}
						}
						continue
					}
					// SQLite names a table by its alias when it has one.
					text := strings.Join(custom, "\n")
					if regexp.MustCompile(`(?m)^SCAN (` + c.table + `|` + c.alias + `)\b`).MatchString(text) {
						t.Errorf("%s, %s of %d rows scans %s:\n%s", when, c.name, n, c.table, text)
					}
					if !regexp.MustCompile(`(?m)^SEARCH (` + c.table + `|` + c.alias + `) USING `).MatchString(text) {
						t.Errorf("%s, %s of %d rows does not search %s by an index:\n%s", when, c.name, n, c.table, text)
					}
				}
			}
		}
	})
}

// On PostgreSQL the lanes have their tables analyzed as the deposits they write double, so that a
// plan cached while a table was small is made again on its statistics.
func TestLanesHaveTheTablesAnalyzed(t *testing.T) {
	onBoth(t, func(t *testing.T, s *Store) {
		if s.Dialect() != sqldb.Postgres {
			if s.analyzer != nil {
				t.Fatal("an analyzer on SQLite")
			}
			return
		}
		analyzed := func() int64 {
			var n int64
			if err := s.db.QueryRow(`SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'payments'`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		before := analyzed()
		for i := range firstAnalyzeAt {
			if ok, err := s.ClaimDeposit(context.Background(), laneDeposit(s, "analyze", fmt.Sprint("analyze-", i), 100)); err != nil || !ok {
				t.Fatalf("claim %d: %v %v", i, ok, err)
			}
		}
		deadline := time.Now().Add(20 * time.Second)
		for analyzed() == before {
			if time.Now().After(deadline) {
				t.Fatalf("payments not analyzed after %d lane claims", firstAnalyzeAt)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if next := s.analyzer.next.Load(); next != 2*firstAnalyzeAt {
			t.Fatalf("next ANALYZE at %d claims, want %d", next, 2*firstAnalyzeAt)
		}
	})
}
