package sqldb

import (
	"context"
	"database/sql"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/bourse-dev/bourse/pkg/testenv"
)

// rawPostgres starts a PostgreSQL server of the test's own and opens it through pgx alone (no
// DB around it, so the driver's errors come back as the server sent them), then runs stmts on it.
// The context it answers bounds the test to a minute; the pool is closed when the test ends.
func rawPostgres(t *testing.T, stmts ...string) (context.Context, *sql.DB) {
	t.Helper()
	pg := testenv.StartPostgresServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	db, err := sql.Open("pgx", pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	execAll(t, ctx, db, stmts...)
	return ctx, db
}

// execAll runs stmts on db in order, failing the test on the first that errs.
func execAll(t *testing.T, ctx context.Context, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}
