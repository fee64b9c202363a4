package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/sqldb"
)

// A read whose bound runs out between a row's arrival (Next) and its Scan fails as the bound's, as
// one that runs out while waiting for the row does: the API answers both Unavailable (retry), not
// Internal. database/sql closes the rows when the bound ends, so the Scan is the first to hear of it.
func TestReadBoundEndingBeforeScanIsTheBounds(t *testing.T) {
	s, err := OpenWith(context.Background(), filepath.Join(t.TempDir(), "payment.db"), Options{TxTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rows, err := s.query(context.Background(), `SELECT 1 UNION ALL SELECT 2`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if !rows.Next() {
		t.Fatalf("no first row: %v", rows.Err())
	}
	time.Sleep(300 * time.Millisecond) // the bound ends, and database/sql closes the rows
	var v int
	err = rows.Scan(&v)
	if !errors.Is(err, sqldb.ErrTxTimeout) || !sqldb.Unavailable(err) {
		t.Fatalf("Scan after the bound: %v; want it marked as the bound's (sqldb.ErrTxTimeout), Unavailable", err)
	}
	if rows.Next() {
		t.Fatal("a second row after the bound")
	}
	if err := rows.Err(); !errors.Is(err, sqldb.ErrTxTimeout) {
		t.Fatalf("Err after the bound: %v; want sqldb.ErrTxTimeout", err)
	}
}

// A read whose caller's own deadline comes before the bound runs on the caller's context: no timer
// and no context of its own. One whose deadline is later, or absent, gets the bound.
func TestReadBoundOnlyWhereItIsSooner(t *testing.T) {
	s := &Store{txTimeout: 30 * time.Second}
	soon, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if b := s.readBound(soon); b.ctx != soon {
		t.Fatal("a read due in 1s got a 30s bound of its own")
	}
	late, cancelLate := context.WithTimeout(context.Background(), time.Minute)
	defer cancelLate()
	for name, ctx := range map[string]context.Context{"no deadline": context.Background(), "a later deadline": late} {
		b := s.readBound(ctx)
		d, ok := b.ctx.Deadline()
		b.cancel()
		if !ok || time.Until(d) > 30*time.Second {
			t.Fatalf("a read with %s got no 30s bound (deadline %v, %v)", name, d, ok)
		}
	}
}
