package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
)

// SQLite's answer while another connection holds the write lock past the busy timeout (an
// operator's shell, a backup, a second process on the file) is "database is locked": the
// database out of reach for now, not a verdict on the request. Nothing was written (the
// transaction never began), so a retry with the same key is safe: Unavailable, as a hung
// PostgreSQL's timeout is. (The busy timeout, 10 s, is below payment's default TxTimeout, 30 s: a
// locked SQLite file answers this, not ErrTxTimeout.)
func TestSQLiteLockedIsUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "test.db")
	ctx := context.Background()
	holder, err := Open(ctx, path)
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

	other, err := Open(ctx, path)
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

// A SQLite file that cannot grow (the disk full; here its page limit) refuses every write with
// SQLITE_FULL until space is freed, as PostgreSQL's disk_full (class 53), which Unavailable
// reports: nothing was written, and the same request retried later succeeds.
func TestSQLiteFullIsUnavailable(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (v BLOB)`); err != nil {
		t.Fatal(err)
	}
	var pages int
	if err := db.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, fmt.Sprintf(`PRAGMA max_page_count = %d`, pages)); err != nil {
		t.Fatal(err)
	}
	err = db.InTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO t VALUES (zeroblob(1 << 20))`)
		return err
	})
	if err == nil {
		t.Fatal("a write past the file's limit succeeded")
	}
	if !Unavailable(err) {
		t.Fatalf("%v: Unavailable false, want true (retryable with the same key)", err)
	}
}
