package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testItem is one row for the items table of createRefItems. A bad one refers to a row that does
// not exist, under a deferred foreign key: the database refuses its transaction at COMMIT, as a
// full disk or a lost server would, on SQLite and PostgreSQL alike and in both committer modes.
type testItem struct {
	id   int
	bad  bool
	hold *gate // the writer waits on it before writing the item
}

func createRefItems(t *testing.T, db *DB) {
	t.Helper()
	for _, q := range []string{`DROP TABLE IF EXISTS items`, `CREATE TABLE items (
		id  INTEGER PRIMARY KEY,
		ref INTEGER REFERENCES items (id) DEFERRABLE INITIALLY DEFERRED
	)`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
}

// txLog records which transaction wrote which items, in the order they were written.
type txLog struct {
	mu      sync.Mutex
	last    *sql.Tx
	batches [][]int
}

func (l *txLog) add(tx *sql.Tx, id int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if tx != l.last || len(l.batches) == 0 {
		l.batches = append(l.batches, nil)
		l.last = tx // kept alive by l, so a later transaction cannot reuse its address
	}
	l.batches[len(l.batches)-1] = append(l.batches[len(l.batches)-1], id)
}

func (l *txLog) get() [][]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.batches)
}

var modes = []string{"batch", "savepoint"}

// newItemCommitter builds a committer of testItems in the given mode, recording its transactions.
func newItemCommitter(db *DB, mode string, o Options, log *txLog) *GroupCommitter[testItem] {
	insert := func(ctx context.Context, tx *sql.Tx, it testItem) error {
		if it.hold != nil {
			it.hold.hold()
		}
		log.add(tx, it.id)
		var ref any
		if it.bad {
			ref = 1_000_000 + it.id
		}
		_, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO items (id, ref) VALUES (?, ?)`), it.id, ref)
		return err
	}
	if mode == "savepoint" {
		return NewSavepointCommitter(db, o, insert)
	}
	return NewGroupCommitterWith(db, o, func(ctx context.Context, tx *sql.Tx, items []testItem) error {
		for _, it := range items {
			if err := insert(ctx, tx, it); err != nil {
				return err
			}
		}
		return nil
	})
}

// enqueued is one queued item and the channel its outcome arrives on.
type enqueued struct {
	id  int
	out chan error
}

func enqueueAll(t *testing.T, g *GroupCommitter[testItem], items []testItem, opts map[int]ItemOptions) []enqueued {
	t.Helper()
	var res []enqueued
	for _, it := range items {
		out := make(chan error, 1)
		if err := g.EnqueueFuncWith(context.Background(), it, opts[it.id], func(err error) { out <- err }); err != nil {
			t.Fatalf("enqueue %d: %v", it.id, err)
		}
		res = append(res, enqueued{it.id, out})
	}
	return res
}

// An alone item is written in a transaction of its own, after the items enqueued before it and
// before the ones after it, however many are queued around it; a failure of its transaction leaves
// its neighbours committed (were it batched with them, they would fail with it).
func TestAloneItemHasItsOwnTransaction(t *testing.T) {
	eachDialect(t, func(t *testing.T, db *DB) {
		for _, mode := range modes {
			t.Run(mode, func(t *testing.T) {
				createRefItems(t, db)
				var log txLog
				g := newItemCommitter(db, mode, Options{MaxBatch: 16}, &log)
				defer g.Close()
				g0 := newGate()
				first := enqueueAll(t, g, []testItem{{id: 0, hold: &g0}}, nil)
				<-g0.started // everything below is queued behind item 0
				alone := ItemOptions{Alone: true}
				rest := enqueueAll(t, g, []testItem{{id: 1}, {id: 2}, {id: 10, bad: true}, {id: 3}, {id: 4}, {id: 11}, {id: 12}, {id: 5}},
					map[int]ItemOptions{10: alone, 11: alone, 12: alone})
				close(g0.release)
				for _, e := range append(first, rest...) {
					err := <-e.out
					if (err != nil) != (e.id == 10) {
						t.Errorf("item %d: %v", e.id, err)
					}
					if e.id == 10 && errors.Is(err, ErrStopped) {
						t.Errorf("item 10: %v; a committer without FailStop does not stop", err)
					}
				}
				want := [][]int{{0}, {1, 2}, {10}, {3, 4}, {11}, {12}, {5}}
				if got := log.get(); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("transactions %v, want %v", got, want)
				}
				if ids := storedIDs(t, db); !slices.Equal(ids, []int{0, 1, 2, 3, 4, 5, 11, 12}) {
					t.Fatalf("stored %v", ids)
				}
			})
		}
	})
}

// A non-fatal item's failure is its submitter's alone: a FailStop committer carries on. The first
// fatal failure still stops it, and then a non-fatal item fails like any other and is not written.
func TestNonFatalItemLeavesFailStopRunning(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			db := openSQLite(t)
			createRefItems(t, db)
			var log txLog
			var fails atomic.Int32
			g := newItemCommitter(db, mode, Options{MaxBatch: 16, FailStop: true, OnFail: func(error) { fails.Add(1) }}, &log)
			defer g.Close()
			nonFatal := ItemOptions{NonFatal: true}

			g0 := newGate()
			first := enqueueAll(t, g, []testItem{{id: 0, hold: &g0}}, nil)
			<-g0.started
			rest := enqueueAll(t, g, []testItem{{id: 1}, {id: 10, bad: true}, {id: 2}}, map[int]ItemOptions{10: nonFatal})
			close(g0.release)
			for _, e := range append(first, rest...) {
				err := <-e.out
				if (err != nil) != (e.id == 10) || errors.Is(err, ErrStopped) {
					t.Errorf("item %d: %v", e.id, err)
				}
			}
			if err := g.Submit(context.Background(), testItem{id: 3}); err != nil || g.Err() != nil || fails.Load() != 0 {
				t.Fatalf("after a non-fatal failure: submit %v, Err %v, OnFail ran %d times", err, g.Err(), fails.Load())
			}
			if got := log.get(); fmt.Sprint(got) != fmt.Sprint([][]int{{0}, {1}, {10}, {2}, {3}}) {
				t.Fatalf("transactions %v: the non-fatal item was not alone", got)
			}

			g4 := newGate()
			first = enqueueAll(t, g, []testItem{{id: 4, hold: &g4}}, nil)
			<-g4.started
			rest = enqueueAll(t, g, []testItem{{id: 20, bad: true}, {id: 21}, {id: 5}}, map[int]ItemOptions{21: nonFatal})
			close(g4.release)
			if err := <-first[0].out; err != nil {
				t.Fatalf("item 4: %v", err)
			}
			for _, e := range rest {
				if err := <-e.out; !errors.Is(err, ErrStopped) {
					t.Errorf("item %d behind the fatal failure: %v, want ErrStopped", e.id, err)
				}
			}
			if err := g.SubmitWith(context.Background(), testItem{id: 6}, nonFatal); !errors.Is(err, ErrStopped) {
				t.Fatalf("a non-fatal submit after the stop: %v", err)
			}
			if fails.Load() != 1 {
				t.Fatalf("OnFail ran %d times", fails.Load())
			}
			if ids := storedIDs(t, db); !slices.Equal(ids, []int{0, 1, 2, 3, 4}) {
				t.Fatalf("stored %v", ids)
			}
		})
	}
}

// Items are written and answered in enqueue order across many batches, alone and non-fatal items
// among them, and no alone item shares a transaction.
func TestOrderHoldsAcrossAloneItems(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			db := openSQLite(t)
			createRefItems(t, db)
			var log txLog
			g := newItemCommitter(db, mode, Options{MaxBatch: 5, QueueLen: 8, FailStop: true}, &log)
			const n = 400
			opts := map[int]ItemOptions{}
			for i := range n {
				switch {
				case i%7 == 3:
					opts[i] = ItemOptions{Alone: true}
				case i%11 == 5:
					opts[i] = ItemOptions{NonFatal: true}
				}
			}
			var answered []int // appended by the writer goroutine only
			all := make(chan struct{})
			for i := range n {
				if err := g.EnqueueFuncWith(context.Background(), testItem{id: i}, opts[i], func(err error) {
					if err != nil {
						t.Errorf("item %d: %v", i, err)
					}
					if answered = append(answered, i); len(answered) == n {
						close(all)
					}
				}); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case <-all:
			case <-time.After(60 * time.Second):
				t.Fatal("not all answered")
			}
			g.Close()
			var written []int
			for _, b := range log.get() {
				for _, id := range b {
					if opts[id].alone() && len(b) != 1 {
						t.Errorf("alone item %d shared transaction %v", id, b)
					}
				}
				written = append(written, b...)
			}
			for i := range n {
				if answered[i] != i || written[i] != i {
					t.Fatalf("position %d: answered item %d, wrote item %d", i, answered[i], written[i])
				}
			}
			if ids := storedIDs(t, db); len(ids) != n {
				t.Fatalf("%d stored", len(ids))
			}
		})
	}
}

// Close writes everything queued, an alone item ending a batch included.
func TestCloseWritesQueuedAloneItems(t *testing.T) {
	db := openSQLite(t)
	createRefItems(t, db)
	var log txLog
	g := newItemCommitter(db, "batch", Options{}, &log)
	g0 := newGate()
	queued := enqueueAll(t, g, []testItem{{id: 0, hold: &g0}}, nil)
	<-g0.started
	queued = append(queued, enqueueAll(t, g, []testItem{{id: 1}, {id: 2}, {id: 3}, {id: 4}},
		map[int]ItemOptions{2: {Alone: true}, 3: {NonFatal: true}})...)
	closed := make(chan struct{})
	go func() { g.Close(); close(closed) }()
	close(g0.release)
	<-closed
	for _, e := range queued {
		if err := <-e.out; err != nil {
			t.Errorf("item %d: %v", e.id, err)
		}
	}
	if got := log.get(); fmt.Sprint(got) != fmt.Sprint([][]int{{0}, {1}, {2}, {3}, {4}}) {
		t.Fatalf("transactions %v", got)
	}
}

// Sync returns only after everything enqueued before it was answered, writes nothing, and reports
// only a failure that stopped the committer.
func TestSyncWaitsForWhatIsBeforeIt(t *testing.T) {
	for _, failStop := range []bool{false, true} {
		t.Run(fmt.Sprint("failstop=", failStop), func(t *testing.T) {
			db := openSQLite(t)
			createRefItems(t, db)
			var log txLog
			g := newItemCommitter(db, "batch", Options{FailStop: failStop}, &log)
			defer g.Close()
			if err := g.Sync(context.Background()); err != nil {
				t.Fatalf("Sync of an idle committer: %v", err)
			}
			g0 := newGate()
			var answered atomic.Int32
			for _, it := range []testItem{{id: 0, hold: &g0}, {id: 1, bad: true}} {
				if err := g.EnqueueFunc(context.Background(), it, func(error) { answered.Add(1) }); err != nil {
					t.Fatal(err)
				}
				if it.id == 0 {
					<-g0.started // 1 is queued behind 0
				}
			}
			synced := make(chan error, 1)
			go func() { synced <- g.Sync(context.Background()) }()
			for len(g.queue) < 2 { // 1 and the barrier: both queued behind 0
				time.Sleep(time.Millisecond)
			}
			close(g0.release)
			err := <-synced
			if answered.Load() != 2 {
				t.Fatalf("Sync returned with %d of the 2 items before it answered", answered.Load())
			}
			if failStop != errors.Is(err, ErrStopped) {
				t.Fatalf("Sync after the failed item 1: %v", err)
			}
			if err := g.Sync(context.Background()); failStop != errors.Is(err, ErrStopped) {
				t.Fatalf("a later Sync: %v", err)
			}
			if got := log.get(); fmt.Sprint(got) != fmt.Sprint([][]int{{0}, {1}}) {
				t.Fatalf("transactions %v", got)
			}
		})
	}
}

// Fail stops the committer from outside: what is queued is not written and fails with the given
// cause, OnFail runs once and before any of them is answered, and the transaction in flight
// completes.
func TestFailStopsFromOutside(t *testing.T) {
	db := openSQLite(t)
	createRefItems(t, db)
	var log txLog
	g0 := newGate()
	var fails atomic.Int32
	var onFailDone atomic.Bool
	g := newItemCommitter(db, "batch", Options{FailStop: true, OnFail: func(error) {
		fails.Add(1)
		close(g0.release)                 // the writer may now answer what is queued...
		time.Sleep(50 * time.Millisecond) // ...and would, before OnFail returns, without the wait
		onFailDone.Store(true)
	}}, &log)
	defer g.Close()
	queued := enqueueAll(t, g, []testItem{{id: 0, hold: &g0}}, nil)
	<-g0.started
	var early atomic.Int32
	for _, id := range []int{1, 2} {
		out := make(chan error, 1)
		if err := g.EnqueueFunc(context.Background(), testItem{id: id}, func(err error) {
			if !onFailDone.Load() {
				early.Add(1)
			}
			out <- err
		}); err != nil {
			t.Fatal(err)
		}
		queued = append(queued, enqueued{id, out})
	}
	cause := errors.New("an outside write failed")
	err := g.Fail(cause)
	if !errors.Is(err, ErrStopped) || !errors.Is(err, cause) || !errors.Is(g.Err(), cause) {
		t.Fatalf("Fail: %v, Err %v", err, g.Err())
	}
	for _, e := range queued {
		err := <-e.out
		if (e.id == 0) != (err == nil) || (err != nil && !errors.Is(err, cause)) {
			t.Errorf("item %d: %v", e.id, err)
		}
	}
	if early.Load() != 0 {
		t.Fatalf("%d items were answered before OnFail returned", early.Load())
	}
	if again := g.Fail(errors.New("another")); again != err || fails.Load() != 1 {
		t.Fatalf("a second Fail: %v, OnFail ran %d times", again, fails.Load())
	}
	if err := g.Submit(context.Background(), testItem{id: 3}); !errors.Is(err, cause) {
		t.Fatalf("submit after Fail: %v", err)
	}
	if ids := storedIDs(t, db); !slices.Equal(ids, []int{0}) {
		t.Fatalf("stored %v", ids)
	}
}
