package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/bourse-dev/bourse/pkg/sqldb"
)

// SQLite's answer while another connection holds the write lock past the busy timeout (an
// operator's shell, a backup, a second process on the file) is "database is locked": the
// database out of reach for now, not a verdict on the request. Nothing was written (the
// transaction never began), so a retry with the same key is safe: Unavailable, as a hung
// PostgreSQL's timeout is. (The store's busy timeout, 10 s, is below the default TxTimeout, 30 s:
// a locked SQLite file answers this, not ErrTxTimeout.)
func TestSQLiteLockedIsUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "payment.db")
	ctx := context.Background()
	holder, err := sqldb.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if _, err := holder.ExecContext(ctx, `CREATE TABLE t (v INTEGER)`); err != nil {
		t.Fatal(err)
	}
	lock, err := holder.BeginTx(ctx, nil) // _txlock=immediate: the write lock now
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback() //nolint:errcheck // only releases the lock
	if _, err := lock.ExecContext(ctx, `INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}

	other, err := sqldb.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	// Its one connection keeps the pragma: the lock is reported at once instead of after 10 s.
	if _, err := other.ExecContext(ctx, `PRAGMA busy_timeout = 0`); err != nil {
		t.Fatal(err)
	}
	err = other.InTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO t VALUES (2)`)
		return err
	})
	if err == nil {
		t.Fatal("a write while another connection holds the lock succeeded")
	}
	if !Unavailable(err) {
		t.Fatalf("%v: Unavailable false, want true (retryable with the same key)", err)
	}
}
