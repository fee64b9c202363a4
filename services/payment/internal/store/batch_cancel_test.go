package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/services/payment/internal/domain"
)

// A caller whose deadline ends while its statement runs inside a group commit must not undo the
// other callers' items of that batch: SQLite rolls back the whole transaction when a statement is
// interrupted, so batch statements run on a context that cannot be cancelled.
func TestCancelledCallerDoesNotFailItsBatch(t *testing.T) {
	// B's statement is made to run long (seconds, more with the race detector): no time bound on
	// the batch, which would fail A for another reason than the one under test.
	s, err := OpenWith(context.Background(), filepath.Join(t.TempDir(), "payment.db"), Options{TxTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.batch == nil {
		t.Fatal("SQLite store without group commit")
	}
	bg := context.Background()
	// An interrupted write, unlike a read, makes SQLite abandon the whole transaction.
	if err := s.InTx(bg, func(tx *Tx) error { _, err := tx.exec(bg, `CREATE TABLE scratch (x INTEGER)`); return err }); err != nil {
		t.Fatal(err)
	}

	// Hold the writer so that A and B queue into the same next batch, A first.
	started, release := make(chan struct{}), make(chan struct{})
	blocker := make(chan error, 1)
	go func() {
		blocker <- s.InTx(bg, func(*Tx) error { close(started); <-release; return nil })
	}()
	<-started

	a := domain.Payment{ID: domain.NewID("pay"), Caller: "account:alice", AccountID: "alice",
		Amount: domain.Money{Amount: 100, Currency: "USD"}, Method: domain.MethodCard,
		CaptureMethod: domain.CaptureAutomatic, Status: domain.PaymentProcessing}
	errA := make(chan error, 1)
	go func() { errA <- s.InTx(bg, func(tx *Tx) error { return tx.InsertPayment(bg, &a) }) }()
	waitQueued(t, s, 1)

	ctxB, cancelB := context.WithCancel(bg)
	defer cancelB()
	errB := make(chan error, 1)
	go func() {
		errB <- s.InTx(ctxB, func(tx *Tx) error {
			time.AfterFunc(20*time.Millisecond, cancelB) // while the statement below runs
			_, err := tx.exec(ctxB, `INSERT INTO scratch WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 1000000)
				SELECT x FROM c`)
			return err
		})
	}()
	waitQueued(t, s, 2)
	close(release)

	if err := <-blocker; err != nil {
		t.Fatalf("blocking item: %v", err)
	}
	if err := <-errA; err != nil {
		t.Fatalf("A, whose context never ended, failed with its batch: %v", err)
	}
	<-errB // B's own outcome is B's: committed or its context's error
	if _, err := s.GetPayment(bg, a.ID); err != nil {
		t.Fatalf("A's payment after the batch: %v", err)
	}
}

// waitQueued waits until n items are queued behind the running one.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.batch.Queued() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d items queued, want %d", s.batch.Queued(), n)
		}
		time.Sleep(time.Millisecond)
	}
}
