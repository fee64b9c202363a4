package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"
)

// Behind a database that hangs, a savepoint committer's queue holds batches whose submitters have
// gone (their requests cancelled or past their deadlines). Such a batch begins no transaction: its
// items are answered with their own context's error at once, instead of each batch waiting its
// TxTimeout for callers no one waits on, and the queue drains behind the one batch that waits.
func TestSavepointBatchOfGoneSubmittersBeginsNoTransaction(t *testing.T) {
	db := openSQLite(t)
	createItems(t, db)
	g := NewSavepointCommitter(db, Options{MaxBatch: 1, TxTimeout: 300 * time.Millisecond},
		func(ctx context.Context, tx *sql.Tx, id int) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO items (id) VALUES (?)`, id)
			return err
		})
	t.Cleanup(g.Close)

	// Another connection to the file holds the write lock: every transaction waits on it.
	other, err := Open(context.Background(), db.path(t))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lock, err := other.BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(`INSERT INTO items (id) VALUES (100)`); err != nil {
		t.Fatal(err)
	}

	first, err := g.Enqueue(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	for g.Queued() != 0 { // the writer has taken it and waits on the lock
		time.Sleep(time.Millisecond)
	}
	var gone []func() error
	for id := 2; id <= 5; id++ {
		ctx, cancel := context.WithCancel(context.Background())
		wait, err := g.Enqueue(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		cancel() // the request is gone while its item waits in the queue
		gone = append(gone, wait)
	}
	if err := first(); !errors.Is(err, ErrTxTimeout) {
		t.Fatalf("the batch that waited on the lock: %v, want ErrTxTimeout", err)
	}
	for i, wait := range gone {
		if err := wait(); !errors.Is(err, context.Canceled) || errors.Is(err, ErrTxTimeout) {
			t.Fatalf("item %d, whose submitter had gone before its batch: %v, want its context's error without a transaction", i+2, err)
		}
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := g.Submit(context.Background(), 7); err != nil {
		t.Fatalf("submit once the database answers: %v", err)
	}
	if got := storedIDs(t, db); len(got) != 1 || got[0] != 7 {
		t.Fatalf("stored %v, want [7]", got)
	}
}
