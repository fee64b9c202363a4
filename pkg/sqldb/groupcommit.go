package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// ErrClosed is returned by Submit after Close.
var ErrClosed = errors.New("sqldb: group committer closed")

// GroupCommitter writes items submitted concurrently in shared transactions: while one transaction
// commits (and fsyncs), newly submitted items queue up and go into the next one. Each Submit returns
// only after its item's transaction committed, so callers get durability at a fraction of the
// per-item fsync cost.
//
// Items are written, and their outcomes delivered, in the order they were enqueued.
//
// Ownership: the constructor starts the writer goroutine and Close stops it, after writing what was
// queued. The writer blocks only on the database and on the done callbacks it runs.
type GroupCommitter[T any] struct {
	db    *DB
	o     Options
	write func(ctx context.Context, tx *sql.Tx, items []T) error // whole-batch mode
	each  func(ctx context.Context, tx *sql.Tx, item T) error    // savepoint mode

	queue chan pending[T]
	stop  chan struct{}
	done  chan struct{}

	mu     sync.RWMutex // Enqueue holds it shared while enqueuing; Close exclusively
	closed bool

	failed atomic.Pointer[error] // FailStop: the first failed commit; set before anyone hears of it

	items []T     // whole-batch mode: reused between batches
	errs  []error // savepoint mode: reused between batches
}

// Options configure a GroupCommitter.
type Options struct {
	// MaxBatch bounds the items of one transaction (default 128).
	MaxBatch int
	// QueueLen bounds the items queued behind the running transaction; Enqueue waits when it is full
	// (default 4×MaxBatch).
	QueueLen int
	// FailStop makes the first failed commit final: nothing queued after it is written (a log keeps
	// no hole), the failed batch, everything queued behind it and every later submit fail with that
	// commit's error, and OnFail runs once, from the writer, before any of them is answered.
	FailStop bool
	// OnFail is told of the failure that stopped a FailStop committer; it must not block on the
	// committer.
	OnFail func(error)
}

func (o Options) withDefaults() Options {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 128
	}
	if o.QueueLen <= 0 {
		o.QueueLen = 4 * o.MaxBatch
	}
	return o
}

type pending[T any] struct {
	ctx  context.Context
	item T
	done func(error)
}

// NewGroupCommitter starts the writer. write must store all items or fail as a whole.
func NewGroupCommitter[T any](db *DB, maxBatch int, write func(ctx context.Context, tx *sql.Tx, items []T) error) *GroupCommitter[T] {
	return NewGroupCommitterWith(db, Options{MaxBatch: maxBatch}, write)
}

// NewGroupCommitterWith is NewGroupCommitter with options. write must store all items or fail as a
// whole; every item of the batch gets its outcome.
func NewGroupCommitterWith[T any](db *DB, o Options, write func(ctx context.Context, tx *sql.Tx, items []T) error) *GroupCommitter[T] {
	g := newCommitter[T](db, o)
	g.write = write
	g.items = make([]T, 0, g.o.MaxBatch)
	go g.loop()
	return g
}

// NewSavepointCommitter starts a writer that runs each item in its own savepoint of the shared
// transaction: an item whose run fails is undone alone and gets that error, the others commit
// together. An item whose submitter's context ended before its turn is skipped with the context's
// error. run gets the writer's context, never the submitter's: cancelling one statement of a shared
// transaction may abort the whole transaction in some drivers.
func NewSavepointCommitter[T any](db *DB, o Options, run func(ctx context.Context, tx *sql.Tx, item T) error) *GroupCommitter[T] {
	g := newCommitter[T](db, o)
	g.each = run
	g.errs = make([]error, 0, g.o.MaxBatch)
	go g.loop()
	return g
}

func newCommitter[T any](db *DB, o Options) *GroupCommitter[T] {
	o = o.withDefaults()
	return &GroupCommitter[T]{db: db, o: o, queue: make(chan pending[T], o.QueueLen),
		stop: make(chan struct{}), done: make(chan struct{})}
}

// Submit stores item durably, together with whatever else is waiting.
func (g *GroupCommitter[T]) Submit(ctx context.Context, item T) error {
	reply := make(chan error, 1)
	if err := g.EnqueueFunc(ctx, item, func(err error) { reply <- err }); err != nil {
		return err
	}
	return <-reply // queued means it will be written: wait even if ctx ends (see Enqueue)
}

// Enqueue queues item and returns at once with a function that waits for its commit. Items are
// written in the order they were enqueued, so a caller that enqueues under its own lock keeps its
// order in the database without holding the lock through the fsync.
func (g *GroupCommitter[T]) Enqueue(ctx context.Context, item T) (wait func() error, err error) {
	reply := make(chan error, 1)
	if err := g.EnqueueFunc(ctx, item, func(err error) { reply <- err }); err != nil {
		return nil, err
	}
	// Once queued the item will be written: wait for the outcome even if ctx ends, so the caller
	// never reports failure for something that was stored.
	return func() error { return <-reply }, nil
}

// EnqueueFunc queues item like Enqueue and has done called, from the writer goroutine, with its
// outcome; done must not block. It returns an error, and done is never called, when the item was not
// queued: after Close, after a FailStop failure, or when ctx ended while the queue was full.
func (g *GroupCommitter[T]) EnqueueFunc(ctx context.Context, item T, done func(error)) error {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closed {
		return ErrClosed
	}
	if err := g.Err(); err != nil {
		return err
	}
	select {
	case g.queue <- pending[T]{ctx: ctx, item: item, done: done}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Err is the failure that stopped a FailStop committer, or nil.
func (g *GroupCommitter[T]) Err() error {
	if p := g.failed.Load(); p != nil {
		return *p
	}
	return nil
}

func (g *GroupCommitter[T]) loop() {
	defer close(g.done)
	batch := make([]pending[T], 0, g.o.MaxBatch)
	for {
		select {
		case p := <-g.queue:
			batch = append(batch[:0], p)
		case <-g.stop:
			g.drain(batch)
			return
		}
		g.flush(g.fill(batch))
	}
}

// fill adds what is queued to batch without waiting.
func (g *GroupCommitter[T]) fill(batch []pending[T]) []pending[T] {
	for len(batch) < g.o.MaxBatch {
		select {
		case p := <-g.queue:
			batch = append(batch, p)
		default:
			return batch
		}
	}
	return batch
}

// drain writes what was queued before Close.
func (g *GroupCommitter[T]) drain(batch []pending[T]) {
	for {
		batch = g.fill(batch[:0])
		if len(batch) == 0 {
			return
		}
		g.flush(batch)
	}
}

// flush writes one batch and answers its items in order.
func (g *GroupCommitter[T]) flush(batch []pending[T]) {
	err := g.Err()
	var itemErrs []error
	if err == nil {
		if g.each != nil {
			itemErrs, err = g.commitEach(batch)
		} else {
			err = g.commitAll(batch)
		}
		if err != nil && g.o.FailStop {
			err = fmt.Errorf("sqldb: group commit failed; nothing more is written: %w", err)
			if g.failed.CompareAndSwap(nil, &err) && g.o.OnFail != nil {
				g.o.OnFail(err)
			}
		}
	}
	for i, p := range batch {
		e := err
		if itemErrs != nil && itemErrs[i] != nil {
			e = itemErrs[i] // an item undone alone keeps its own reason
		}
		p.done(e)
	}
}

func (g *GroupCommitter[T]) commitAll(batch []pending[T]) error {
	items := g.items[:0]
	for _, p := range batch {
		items = append(items, p.item)
	}
	g.items = items
	ctx := context.Background()
	err := g.db.InTx(ctx, func(tx *sql.Tx) error { return g.write(ctx, tx, items) })
	clear(items) // the items are the callers'; do not keep them alive
	return err
}

// commitEach runs each item in a savepoint of one transaction. It returns each item's own error and
// the transaction's (which, when set, is every item's not already failed).
func (g *GroupCommitter[T]) commitEach(batch []pending[T]) ([]error, error) {
	errs := g.errs[:0]
	for range batch {
		errs = append(errs, nil)
	}
	g.errs = errs
	ctx := context.Background()
	tx, err := g.db.BeginTx(ctx, nil)
	if err != nil {
		return errs, err
	}
	for i, p := range batch {
		if err := p.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if _, err := tx.ExecContext(ctx, `SAVEPOINT sqldb_item`); err != nil {
			_ = tx.Rollback()
			return errs, err
		}
		if errs[i] = g.each(ctx, tx, p.item); errs[i] != nil {
			if _, err := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT sqldb_item`); err != nil {
				_ = tx.Rollback()
				return errs, fmt.Errorf("sqldb: undoing a failed item of a batch: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `RELEASE SAVEPOINT sqldb_item`); err != nil {
			_ = tx.Rollback()
			return errs, err
		}
	}
	return errs, tx.Commit()
}

// Close writes what is queued and stops the writer.
func (g *GroupCommitter[T]) Close() {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		close(g.stop)
	}
	g.mu.Unlock()
	<-g.done
}
