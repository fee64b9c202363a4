package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

const (
	qInsertItem = `INSERT INTO items (id, note) VALUES (?, ?)`
	qItemNote   = `SELECT note FROM items WHERE id = ?`
	qCountItems = `SELECT COUNT(*) FROM items WHERE note = ?`
)

func newItems(t testing.TB, db *DB, max int) *Stmts {
	t.Helper()
	if err := db.Migrate(context.Background(), []string{`CREATE TABLE items (id INTEGER PRIMARY KEY, note TEXT NOT NULL)`}); err != nil {
		t.Fatal(err)
	}
	st := NewStmts(db, max)
	t.Cleanup(func() { st.Close() })
	return st
}

// waitPrepared waits (boundedly) for the preparer to have prepared query.
func waitPrepared(t testing.TB, st *Stmts, query string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !st.Prepared(query); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%q not prepared after 20s", query)
		}
	}
}

// Statements are learnt as they run and then used prepared inside transactions: on SQLite's single
// writer connection (which a transaction holds, so a miss that prepared in place would hang until
// the deadline), in a savepoint group commit, and on PostgreSQL's pool from many connections at
// once. Results match the unprepared statements'; the set stays within its bound; a query that does
// not prepare fails as it would unprepared.
func TestStmtsInTransactions(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *DB) {
		st := newItems(t, db, 2)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()

		// First use, inside a transaction holding SQLite's only connection: runs unprepared.
		err := db.InTx(ctx, func(tx *sql.Tx) error {
			in := st.In(tx)
			if _, err := in.Exec(ctx, qInsertItem, -1, "warm"); err != nil {
				return err
			}
			var note string
			return in.QueryRow(ctx, qItemNote, -1).Scan(&note)
		})
		if err != nil {
			t.Fatal(err)
		}
		waitPrepared(t, st, qInsertItem)
		waitPrepared(t, st, qItemNote)
		// The set is full: a third query runs but is not even queued.
		var n int
		if err := st.QueryRow(ctx, qCountItems, "warm").Scan(&n); err != nil || n != 1 {
			t.Fatalf("count of warm items: %d, %v", n, err)
		}
		st.mu.Lock()
		_, asked := st.asked[qCountItems]
		st.mu.Unlock()
		if asked || st.Len() != 2 {
			t.Fatalf("%d statements prepared, count queued %v: want the first 2 only", st.Len(), asked)
		}
		// A query that does not prepare fails as it would unprepared, and stays unprepared (the
		// preparer takes queries in order: once the next one is prepared, it has given up on it).
		other := NewStmts(db, 4)
		defer other.Close()
		for range 2 {
			if _, err := other.Exec(ctx, `INSERT INTO nowhere VALUES (?)`, 1); err == nil {
				t.Fatal("insert into a missing table succeeded")
			}
		}
		if err := other.QueryRow(ctx, qCountItems, "warm").Scan(&n); err != nil || n != 1 {
			t.Fatalf("count of warm items: %d, %v", n, err)
		}
		waitPrepared(t, other, qCountItems)
		if other.Prepared(`INSERT INTO nowhere VALUES (?)`) {
			t.Fatal("a failing statement is in the set")
		}

		g := NewSavepointCommitter(db, Options{MaxBatch: 16}, func(ctx context.Context, tx *sql.Tx, id int) error {
			if _, err := st.In(tx).Exec(ctx, qInsertItem, id, fmt.Sprint("n", id%3)); err != nil {
				return err
			}
			var note string
			if err := st.In(tx).QueryRow(ctx, qItemNote, id).Scan(&note); err != nil {
				return err
			}
			if note != fmt.Sprint("n", id%3) {
				return fmt.Errorf("item %d reads back %q", id, note)
			}
			return nil
		})
		const writers, each = 8, 25
		var wg sync.WaitGroup
		errs := make(chan error, writers*each+writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					errs <- g.Submit(ctx, w*each+i)
				}
				// Beside the committer, plain transactions (on PostgreSQL, on other connections).
				if db.Dialect == Postgres {
					errs <- db.InTx(ctx, func(tx *sql.Tx) error {
						_, err := st.In(tx).Exec(ctx, qInsertItem, 1000+w, "plain")
						return err
					})
				}
			}()
		}
		wg.Wait()
		g.Close()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		// A duplicate fails in its own savepoint, through the prepared statement, like unprepared.
		g = NewSavepointCommitter(db, Options{}, func(ctx context.Context, tx *sql.Tx, id int) error {
			_, err := st.In(tx).Exec(ctx, qInsertItem, id, "dup")
			return err
		})
		if err := g.Submit(ctx, 0); err == nil {
			t.Fatal("duplicate key accepted through the prepared statement")
		}
		g.Close()

		want := map[string]int{"n0": 0, "n1": 0, "n2": 0}
		for i := range writers * each {
			want[fmt.Sprint("n", i%3)]++
		}
		for note, n := range want {
			var got int
			// Not in the set: unprepared, on the DB.
			if err := st.QueryRow(ctx, qCountItems, note).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != n {
				t.Fatalf("%d items noted %s, want %d", got, note, n)
			}
		}
		rows, err := st.Query(ctx, qItemNote, 7)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		if !rows.Next() {
			t.Fatal("item 7 missing")
		}
	})
}

// The cost prepared statements save: inserts in a transaction on the SQLite writer, prepared once or
// parsed each time.
func BenchmarkStmtsExec(b *testing.B) {
	for _, prepared := range []bool{false, true} {
		b.Run(fmt.Sprint("prepared=", prepared), func(b *testing.B) {
			db, err := Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			max := 0
			if prepared {
				max = 1
			}
			st := newItems(b, db, max)
			ctx := context.Background()
			if _, err := st.Exec(ctx, qInsertItem, -1, "warm"); err != nil {
				b.Fatal(err)
			}
			if prepared {
				waitPrepared(b, st, qInsertItem)
			}
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer tx.Rollback() //nolint:errcheck // nothing to keep
			in := st.In(tx)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if _, err := in.Exec(ctx, qInsertItem, i, "note"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
