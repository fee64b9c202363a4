package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/bourse-dev/bourse/pkg/testenv"
)

// eachDialect runs fn against a fresh SQLite file and a fresh PostgreSQL server.
func eachDialect(t *testing.T, fn func(t *testing.T, db *DB)) {
	t.Run("sqlite", func(t *testing.T) {
		db, err := Open(context.Background(), filepath.Join(t.TempDir(), "test.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		fn(t, db)
	})
	t.Run("postgres", func(t *testing.T) {
		db, err := Open(context.Background(), testenv.StartPostgres(t))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		fn(t, db)
	})
}

func TestMigrateIsIdempotentAndGroupCommitStoresEverything(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		migrations := []string{
			`CREATE TABLE items (id INTEGER PRIMARY KEY, note TEXT NOT NULL)`,
			`CREATE INDEX items_note ON items (note)`,
		}
		for range 2 {
			if err := db.Migrate(ctx, migrations); err != nil {
				t.Fatal(err)
			}
		}
		type item struct {
			id   int
			note string
		}
		g := NewGroupCommitter(db, 64, func(ctx context.Context, tx *sql.Tx, items []item) error {
			for _, it := range items {
				if _, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO items (id, note) VALUES (?, ?)`), it.id, it.note); err != nil {
					return err
				}
			}
			return nil
		})
		const writers, each = 8, 50
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					errs <- g.Submit(ctx, item{id: w*each + i, note: fmt.Sprint(w)})
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		// A duplicate fails its whole batch and nothing of it is stored.
		if err := g.Submit(ctx, item{id: 0, note: "dup"}); err == nil {
			t.Fatal("duplicate key accepted")
		}
		g.Close()
		if err := g.Submit(ctx, item{id: 9999}); err != ErrClosed {
			t.Fatalf("submit after close: %v", err)
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM items`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != writers*each {
			t.Fatalf("%d rows, want %d", n, writers*each)
		}
	})
}

func TestRebind(t *testing.T) {
	pg := &DB{Dialect: Postgres}
	if got := pg.Rebind("a = ? AND b = ?"); got != "a = $1 AND b = $2" {
		t.Fatal(got)
	}
	if got := (&DB{}).Rebind("a = ?"); got != "a = ?" {
		t.Fatal(got)
	}
}
