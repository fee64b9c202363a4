package sqldb

import (
	"context"
	"testing"
	"time"
)

// PostgreSQL ends a session it has timed out (idle_in_transaction_session_timeout,
// idle_session_timeout) as it ends one an operator terminates: FATAL, the connection closed, the
// transaction rolled back whole. The next statement hears of it with the timeout's SQLSTATE, and a
// retry on another connection goes through: Unavailable, as 57P01 is. A statement the caller's own
// context ends is not (pgx stops the wait at the socket; no 57014 comes back for it).
func TestPostgresSessionEndsAreUnavailable(t *testing.T) {
	ctx, db := rawPostgres(t)

	t.Run("idle in transaction", func(t *testing.T) {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback() //nolint:errcheck // the server has rolled it back
		if _, err := tx.ExecContext(ctx, `SET LOCAL idle_in_transaction_session_timeout = '100ms'`); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		_, err = tx.ExecContext(ctx, `SELECT 1`)
		if err == nil || !Unavailable(err) || RolledBack(err) {
			t.Fatalf("%v: Unavailable %v, RolledBack %v; want Unavailable only", err, Unavailable(err), RolledBack(err))
		}
	})

	t.Run("idle session", func(t *testing.T) {
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, `SET idle_session_timeout = '100ms'`); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		_, err = conn.ExecContext(ctx, `SELECT 1`)
		if err == nil || !Unavailable(err) {
			t.Fatalf("%v: Unavailable false, want true", err)
		}
	})

	t.Run("the caller's own cancel and deadline", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(100*time.Millisecond, cancel)
		_, err := db.ExecContext(cctx, `SELECT pg_sleep(5)`)
		if err == nil || Unavailable(err) || RolledBack(err) {
			t.Fatalf("cancelled: %v: Unavailable %v, RolledBack %v; want neither (the caller's own)", err, Unavailable(err), RolledBack(err))
		}
		dctx, dcancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer dcancel()
		_, err = db.ExecContext(dctx, `SELECT pg_sleep(5)`)
		if err == nil || Unavailable(err) || RolledBack(err) {
			t.Fatalf("deadline: %v: Unavailable %v, RolledBack %v; want neither (the caller's own)", err, Unavailable(err), RolledBack(err))
		}
	})
}
