package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"
)

// A database that hangs instead of failing: another connection holds SQLite's write lock, so the
// committer's transaction waits on it (up to the 10 s busy timeout). With TxTimeout the batch fails
// with ErrTxTimeout once its time is up, whoever waits behind it is answered, and once the lock is
// released the committer writes again: both the whole-batch and the savepoint committer.
func TestTxTimeoutCutsOffAHungDatabase(t *testing.T) {
	for _, mode := range []string{"whole-batch", "savepoint"} {
		t.Run(mode, func(t *testing.T) {
			db := openSQLite(t)
			createItems(t, db)
			o := Options{MaxBatch: 8, TxTimeout: 300 * time.Millisecond}
			var submit func(ctx context.Context, id int) error
			if mode == "whole-batch" {
				g := NewGroupCommitterWith(db, o, func(ctx context.Context, tx *sql.Tx, ids []int) error {
					for _, id := range ids {
						if _, err := tx.ExecContext(ctx, `INSERT INTO items (id) VALUES (?)`, id); err != nil {
							return err
						}
					}
					return nil
				})
				t.Cleanup(g.Close)
				submit = g.Submit
			} else {
				g := NewSavepointCommitter(db, o, func(ctx context.Context, tx *sql.Tx, id int) error {
					_, err := tx.ExecContext(ctx, `INSERT INTO items (id) VALUES (?)`, id)
					return err
				})
				t.Cleanup(g.Close)
				submit = g.Submit
			}

			// Another process's connection to the same file takes the write lock and keeps it.
			other, err := Open(context.Background(), db.path(t))
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			lock, err := other.BeginTx(context.Background(), nil) // _txlock=immediate: the write lock now
			if err != nil {
				t.Fatal(err)
			}
			if _, err := lock.Exec(`INSERT INTO items (id) VALUES (100)`); err != nil {
				t.Fatal(err)
			}

			start := time.Now()
			errc := make(chan error, 3)
			for id := range 3 {
				go func() { errc <- submit(context.Background(), id+1) }()
			}
			for range 3 {
				if err := <-errc; !errors.Is(err, ErrTxTimeout) {
					t.Fatalf("submit while the database hangs: %v, want ErrTxTimeout", err)
				}
			}
			// Each batch gets its own 300 ms: three batches at most, far below the busy timeout.
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("answered after %v", d)
			}
			if err := lock.Rollback(); err != nil {
				t.Fatal(err)
			}
			if err := submit(context.Background(), 7); err != nil {
				t.Fatalf("submit once the database answers: %v", err)
			}
			if got := storedIDs(t, db); len(got) != 1 || got[0] != 7 {
				t.Fatalf("stored %v, want [7]: nothing of the timed-out batches", got)
			}
		})
	}
}

// path is the SQLite file db was opened on.
func (db *DB) path(t *testing.T) string {
	t.Helper()
	var seq int
	var name, file string
	if err := db.QueryRow(`PRAGMA database_list`).Scan(&seq, &name, &file); err != nil {
		t.Fatal(err)
	}
	return file
}
