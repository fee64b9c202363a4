package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/bourse-dev/bourse/pkg/sqldb"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// openStore opens a store on url with o, failing the test if it does not open; the store is
// closed when the test ends (before a PostgreSQL server started earlier in the test stops).
func openStore(t testing.TB, url string, o Options) *Store {
	t.Helper()
	s, err := OpenWith(context.Background(), url, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// sqliteURL is a fresh SQLite database in the test's temporary directory.
func sqliteURL(t testing.TB) string { return filepath.Join(t.TempDir(), "payment.db") }

// forEachDialect runs fn as a subtest on a fresh SQLite database and on a fresh PostgreSQL one,
// passing the database's URL (nothing opened on it yet).
func forEachDialect(t *testing.T, fn func(t *testing.T, url string)) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			url := sqliteURL(t)
			if dialect == "postgres" {
				url = testenv.StartPostgres(t)
			}
			fn(t, url)
		})
	}
}

// writeEarlierRelease makes the database at url an earlier release's: its first n migrations,
// then stmts' statements for the dialect, each failing the test if it errs. It answers how many
// migrations this release has.
func writeEarlierRelease(t *testing.T, url string, n int, stmts func(sqldb.Dialect) []string) int {
	t.Helper()
	ctx := context.Background()
	old, err := sqldb.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	all := migrations(old.Dialect)
	if err := old.Migrate(ctx, all[:n]); err != nil {
		t.Fatalf("the earlier release's schema: %v", err)
	}
	for _, q := range stmts(old.Dialect) {
		if _, err := old.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return len(all)
}

// wantSchemaVersion fails the test unless s's database has had exactly want migrations.
func wantSchemaVersion(t *testing.T, s *Store, want int) {
	t.Helper()
	var n int
	if err := s.db.QueryRowContext(context.Background(), `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&n); err != nil || n != want {
		t.Errorf("schema version %d (%v), want %d", n, err, want)
	}
}

// sqlitePlan is SQLite's plan of query with args, the detail of each step.
func sqlitePlan(t *testing.T, s *Store, query string, args ...any) []string {
	t.Helper()
	rows, err := s.db.QueryContext(context.Background(), `EXPLAIN QUERY PLAN `+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var steps []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		steps = append(steps, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return steps
}

// postgresConn is one connection of s's PostgreSQL pool (closed when the test ends) on which
// stmts have run, so that session settings (plan_cache_mode) and prepared statements hold.
func postgresConn(t *testing.T, s *Store, stmts ...string) *sql.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	for _, q := range stmts {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return conn
}

// postgresPlan is the lines PostgreSQL answers to explain (an EXPLAIN or EXPLAIN EXECUTE) on conn.
func postgresPlan(t *testing.T, conn *sql.Conn, explain string, args ...any) []string {
	t.Helper()
	rows, err := conn.QueryContext(context.Background(), explain, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan
}

// genericPlan prepares query (in the store's placeholders) as name on conn and answers the plan
// of its execution with args (a parenthesised SQL list, or "" for none). With plan_cache_mode set
// to force_generic_plan on conn, that is the plan made for any parameters.
func genericPlan(t *testing.T, s *Store, conn *sql.Conn, name, query, args string) []string {
	t.Helper()
	if _, err := conn.ExecContext(context.Background(), `PREPARE `+name+` AS `+s.db.Rebind(query)); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return postgresPlan(t, conn, `EXPLAIN EXECUTE `+name+args)
}
