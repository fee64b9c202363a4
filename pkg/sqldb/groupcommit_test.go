package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

func openSQLite(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func createItems(t *testing.T, db *DB) {
	t.Helper()
	if err := db.Migrate(context.Background(), []string{`CREATE TABLE items (id INTEGER PRIMARY KEY)`}); err != nil {
		t.Fatal(err)
	}
}

func storedIDs(t *testing.T, db *DB) []int {
	t.Helper()
	rows, err := db.Query(`SELECT id FROM items ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []int
	for rows.Next() {
		var id int
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// gate blocks the writer on one item until released, so that what is enqueued meanwhile is known to
// be queued behind it.
type gate struct {
	started, release chan struct{}
}

func newGate() gate { return gate{started: make(chan struct{}), release: make(chan struct{})} }

func (g gate) hold() { close(g.started); <-g.release }

// A commit fails (a trigger refuses item 2). With FailStop nothing queued behind it is written, every
// later submit fails with the same error and OnFail runs once, before anyone is answered; without it
// the committer carries on, which is what makes the difference observable.
func TestFailStop(t *testing.T) {
	for _, failStop := range []bool{true, false} {
		t.Run(fmt.Sprint("failstop=", failStop), func(t *testing.T) {
			db := openSQLite(t)
			createItems(t, db)
			if _, err := db.Exec(`CREATE TRIGGER refuse_2 BEFORE INSERT ON items WHEN NEW.id = 2
				BEGIN SELECT RAISE(ABORT, 'injected failure'); END`); err != nil {
				t.Fatal(err)
			}
			g0 := newGate()
			var mu sync.Mutex
			var fails []error
			var answered []int
			onFailBeforeAnswer := true
			g := NewGroupCommitterWith(db, Options{MaxBatch: 1, FailStop: failStop, OnFail: func(err error) {
				mu.Lock()
				defer mu.Unlock()
				fails = append(fails, err)
			}}, func(ctx context.Context, tx *sql.Tx, items []int) error {
				for _, id := range items {
					if id == 1 {
						g0.hold()
					}
					if _, err := tx.ExecContext(ctx, `INSERT INTO items (id) VALUES (?)`, id); err != nil {
						return err
					}
				}
				return nil
			})
			defer g.Close()
			ctx := context.Background()
			results := make(map[int]chan error)
			for _, id := range []int{1, 2, 3, 4} {
				results[id] = make(chan error, 1)
				if err := g.EnqueueFunc(ctx, id, func(err error) {
					mu.Lock()
					if err != nil && failStop && len(fails) != 1 {
						onFailBeforeAnswer = false
					}
					answered = append(answered, id)
					mu.Unlock()
					results[id] <- err
				}); err != nil {
					t.Fatal(err)
				}
				if id == 1 {
					<-g0.started // 2, 3 and 4 are queued behind 1
				}
			}
			close(g0.release)
			got := map[int]error{}
			for id, ch := range results {
				got[id] = <-ch
			}
			if got[1] != nil || got[2] == nil {
				t.Fatalf("item 1: %v, item 2: %v; want success then the injected failure", got[1], got[2])
			}
			later := g.Submit(ctx, 5)
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(answered, []int{1, 2, 3, 4}) {
				t.Errorf("answered in order %v", answered)
			}
			if !failStop {
				if got[3] != nil || got[4] != nil || later != nil || len(fails) != 0 || g.Err() != nil {
					t.Fatalf("without FailStop: 3: %v, 4: %v, 5: %v, OnFail %v, Err %v", got[3], got[4], later, fails, g.Err())
				}
				if ids := storedIDs(t, db); !slices.Equal(ids, []int{1, 3, 4, 5}) {
					t.Fatalf("stored %v", ids)
				}
				return
			}
			if len(fails) != 1 || !onFailBeforeAnswer {
				t.Fatalf("OnFail ran %d times (before the answers: %v)", len(fails), onFailBeforeAnswer)
			}
			for _, err := range []error{got[2], got[3], got[4], later, g.Err()} {
				if !errors.Is(err, fails[0]) {
					t.Errorf("after the failure: %v, want %v", err, fails[0])
				}
			}
			if ids := storedIDs(t, db); !slices.Equal(ids, []int{1}) {
				t.Fatalf("stored %v, want only [1]", ids)
			}
		})
	}
}

// Each item runs in its own savepoint: one that fails, or whose statement the database refuses, is
// undone alone; one whose submitter gave up before its turn is skipped; the rest commit together.
func TestSavepointCommitterUndoesOneItem(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *DB) {
		createItems(t, db)
		type item func(ctx context.Context, tx *sql.Tx) error
		insert := func(id int) item {
			return func(ctx context.Context, tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO items (id) VALUES (?)`), id)
				return err
			}
		}
		g0 := newGate()
		g := NewSavepointCommitter(db, Options{}, func(ctx context.Context, tx *sql.Tx, it item) error { return it(ctx, tx) })
		defer g.Close()
		ctx := context.Background()
		gateDone, err := g.Enqueue(ctx, func(ctx context.Context, tx *sql.Tx) error {
			g0.hold()
			return insert(100)(ctx, tx)
		})
		if err != nil {
			t.Fatal(err)
		}
		<-g0.started
		refused := errors.New("refused after writing")
		gaveUp, cancel := context.WithCancel(ctx)
		items := []struct {
			ctx  context.Context
			it   item
			want error // nil: committed; errAny: some error
		}{
			{ctx, insert(1), nil},
			{ctx, func(ctx context.Context, tx *sql.Tx) error {
				if err := insert(2)(ctx, tx); err != nil {
					return err
				}
				return refused
			}, refused},
			{ctx, insert(3), nil},
			{ctx, insert(1), errAny}, // duplicate key: on PostgreSQL this aborts the transaction
			{gaveUp, insert(4), context.Canceled},
			{ctx, insert(5), nil},
		}
		waits := make([]func() error, len(items))
		for i, x := range items {
			if waits[i], err = g.Enqueue(x.ctx, x.it); err != nil {
				t.Fatal(err)
			}
		}
		cancel()
		close(g0.release)
		if err := gateDone(); err != nil {
			t.Fatal(err)
		}
		for i, x := range items {
			err := waits[i]()
			switch {
			case x.want == errAny && err == nil, x.want != errAny && !errors.Is(err, x.want):
				t.Errorf("item %d: %v, want %v", i, err, x.want)
			}
		}
		if ids := storedIDs(t, db); !slices.Equal(ids, []int{1, 3, 5, 100}) {
			t.Fatalf("stored %v, want [1 3 5 100]", ids)
		}
	})
}

var errAny = errors.New("any error")

// Outcomes arrive in enqueue order across many batches.
func TestGroupCommitAnswersInOrder(t *testing.T) {
	db := openSQLite(t)
	createItems(t, db)
	g := NewGroupCommitterWith(db, Options{MaxBatch: 7, QueueLen: 16}, func(ctx context.Context, tx *sql.Tx, items []int) error {
		for _, id := range items {
			if _, err := tx.ExecContext(ctx, `INSERT INTO items (id) VALUES (?)`, id); err != nil {
				return err
			}
		}
		return nil
	})
	const n = 300
	var order []int // appended only by the writer goroutine
	all := make(chan struct{})
	for i := range n {
		if err := g.EnqueueFunc(context.Background(), i, func(err error) {
			if err != nil {
				t.Errorf("item %d: %v", i, err)
			}
			order = append(order, i)
			if len(order) == n {
				close(all)
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-all:
	case <-time.After(30 * time.Second):
		t.Fatal("not all answered")
	}
	g.Close()
	if err := g.EnqueueFunc(context.Background(), n, func(error) { t.Error("answered after Close") }); err != ErrClosed {
		t.Fatalf("after Close: %v", err)
	}
	for i, id := range order {
		if id != i {
			t.Fatalf("answer %d was item %d", i, id)
		}
	}
	if ids := storedIDs(t, db); len(ids) != n {
		t.Fatalf("%d stored, want %d", len(ids), n)
	}
}
