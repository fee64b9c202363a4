package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Submit after Close.
var ErrClosed = errors.New("sqldb: group committer closed")

// GroupCommitter writes items submitted concurrently in shared transactions: while one transaction
// commits (and fsyncs), newly submitted items queue up and go into the next one. Each Submit returns
// only after its item's transaction committed, so callers get durability at a fraction of the
// per-item fsync cost.
//
// Items are written, and their outcomes delivered, in the order they were enqueued. An item may be
// written alone, or may fail without stopping the committer (see ItemOptions); Sync waits for
// everything enqueued before it without writing anything.
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

	failed atomic.Pointer[error] // the failure that stopped the committer; set before anyone hears of it
	failMu sync.Mutex            // held while the failure is recorded and OnFail runs

	carry    pending[T] // the writer's: an item that ends the batch before it (see fill)
	hasCarry bool

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
	// no hole), the failed batch, everything queued behind it and every later submit fail with an
	// error wrapping ErrStopped and that commit's, and OnFail runs once, from the writer, before any
	// of them is answered.
	FailStop bool
	// OnFail is told of the failure that stopped a FailStop committer (or of the one given to Fail);
	// it may call Err but must not enqueue to, sync or close the committer.
	OnFail func(error)
	// TxTimeout bounds each batch's transaction, its commit included (0: no bound). A database that
	// hangs rather than fails would otherwise hold the writer, and everyone queued behind it, for
	// ever. A batch past it fails with an error wrapping ErrTxTimeout (a FailStop committer stops)
	// like any failed commit; as after a lost connection, a commit cut off this way may have
	// committed.
	TxTimeout time.Duration
}

// ItemOptions say how one item is committed (see SubmitWith and EnqueueFuncWith).
type ItemOptions struct {
	// Alone writes the item in a transaction of its own: after every item enqueued before it has
	// committed, and before any item enqueued after it is written. For work that must not share a
	// transaction, such as a large rewrite whose size or failure the small items should not carry.
	Alone bool
	// NonFatal makes the item's failure its own: only its submitter hears of it, and a FailStop
	// committer carries on (for work whose failure loses nothing the items after it depend on). It
	// implies Alone, which is what makes a failed transaction the item's own. (In a savepoint
	// committer an item's own run fails alone anyway; NonFatal covers its transaction, the commit
	// included.) Once the committer has stopped, a non-fatal item fails like any other.
	NonFatal bool
}

func (o ItemOptions) alone() bool { return o.Alone || o.NonFatal }

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
	ctx     context.Context
	item    T
	opts    ItemOptions
	barrier bool // Sync's: nothing to write, only a place in the order
	done    func(error)
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
	return g.SubmitWith(ctx, item, ItemOptions{})
}

// SubmitWith is Submit with options for this item.
func (g *GroupCommitter[T]) SubmitWith(ctx context.Context, item T, opts ItemOptions) error {
	return g.submit(pending[T]{ctx: ctx, item: item, opts: opts})
}

// Sync returns once every item enqueued before it has been answered, with nil, or with the error
// that stopped the committer. It writes nothing, and a failure that did not stop the committer
// (without FailStop, or of a non-fatal item) is its item's alone. ctx bounds only the wait for room
// in the queue. It costs a turn of the writer even when nothing is queued: a caller that knows
// nothing is in flight need not call it.
func (g *GroupCommitter[T]) Sync(ctx context.Context) error {
	return g.submit(pending[T]{ctx: ctx, barrier: true})
}

func (g *GroupCommitter[T]) submit(p pending[T]) error {
	reply := make(chan error, 1)
	p.done = func(err error) { reply <- err }
	if err := g.enqueue(p); err != nil {
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
// queued: after Close, once the committer has stopped, or when ctx ended while the queue was full.
func (g *GroupCommitter[T]) EnqueueFunc(ctx context.Context, item T, done func(error)) error {
	return g.enqueue(pending[T]{ctx: ctx, item: item, done: done})
}

// EnqueueFuncWith is EnqueueFunc with options for this item.
func (g *GroupCommitter[T]) EnqueueFuncWith(ctx context.Context, item T, opts ItemOptions, done func(error)) error {
	return g.enqueue(pending[T]{ctx: ctx, item: item, opts: opts, done: done})
}

func (g *GroupCommitter[T]) enqueue(p pending[T]) error {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closed {
		return ErrClosed
	}
	if err := g.stopped(); err != nil {
		return err
	}
	select {
	case g.queue <- p:
		return nil
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
}

func (g *GroupCommitter[T]) loop() {
	defer close(g.done)
	batch := make([]pending[T], 0, g.o.MaxBatch)
	for {
		if p, ok := g.takeCarry(); ok {
			batch = append(batch[:0], p)
		} else {
			select {
			case p := <-g.queue:
				batch = append(batch[:0], p)
			case <-g.stop:
				g.drain(batch)
				return
			}
		}
		g.flush(g.fill(batch))
	}
}

func (g *GroupCommitter[T]) takeCarry() (pending[T], bool) {
	p, ok := g.carry, g.hasCarry
	g.carry, g.hasCarry = pending[T]{}, false
	return p, ok
}

// fill adds what is queued to batch, which holds the batch's first item, without waiting. An alone
// item is a batch of its own: it ends the batch before it and is carried to the next.
func (g *GroupCommitter[T]) fill(batch []pending[T]) []pending[T] {
	if batch[0].opts.alone() {
		return batch
	}
	for len(batch) < g.o.MaxBatch {
		select {
		case p := <-g.queue:
			if p.opts.alone() {
				g.carry, g.hasCarry = p, true
				return batch
			}
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
		p, ok := g.takeCarry()
		if !ok {
			select {
			case p, ok = <-g.queue:
			default:
			}
		}
		if !ok {
			return
		}
		g.flush(g.fill(append(batch[:0], p)))
	}
}

// flush writes one batch and answers its items in order.
func (g *GroupCommitter[T]) flush(batch []pending[T]) {
	err := g.stopped()
	var itemErrs []error
	if err == nil {
		if g.each != nil {
			itemErrs, err = g.commitEach(batch)
		} else {
			err = g.commitAll(batch)
		}
		// A non-fatal item is alone in its batch, so the failure is its own.
		if err != nil && g.o.FailStop && !batch[0].opts.NonFatal {
			err = g.halt(err)
		}
	}
	// A barrier hears only of a failure that stopped the committer, even one from Fail while
	// this batch committed: it answers for what is behind it, not for this batch.
	barrierErr := g.stopped()
	for i, p := range batch {
		e := err
		switch {
		case p.barrier:
			e = barrierErr
		case itemErrs != nil && itemErrs[i] != nil:
			e = itemErrs[i] // an item undone alone keeps its own reason
		}
		p.done(e)
	}
	clear(batch) // the items and callbacks are the callers'; do not keep them alive
}

// commitAll writes the batch's items in one transaction; a batch of barriers writes nothing.
func (g *GroupCommitter[T]) commitAll(batch []pending[T]) error {
	items := g.items[:0]
	for _, p := range batch {
		if !p.barrier {
			items = append(items, p.item)
		}
	}
	g.items = items
	if len(items) == 0 {
		return nil
	}
	ctx, done := g.txContext()
	err := g.db.InTx(ctx, func(tx *sql.Tx) error { return g.write(ctx, tx, items) })
	clear(items) // the items are the callers'; do not keep them alive
	return done(err)
}

// commitEach runs each item in a savepoint of one transaction. It returns each item's own error and
// the transaction's (which, when set, is every item's not already failed).
func (g *GroupCommitter[T]) commitEach(batch []pending[T]) ([]error, error) {
	ctx, done := g.txContext()
	errs, err := g.commitEachIn(ctx, batch)
	return errs, done(err)
}

func (g *GroupCommitter[T]) commitEachIn(ctx context.Context, batch []pending[T]) ([]error, error) {
	errs := g.errs[:0]
	for range batch {
		errs = append(errs, nil)
	}
	g.errs = errs
	// An item whose submitter has gone is answered before the transaction begins, and a batch of
	// such items (or barriers) begins none: behind a database that hangs, the queue then drains
	// behind the one batch that waits out its TxTimeout, not a TxTimeout per batch.
	live := false
	for i, p := range batch {
		if !p.barrier {
			errs[i] = p.ctx.Err()
			live = live || errs[i] == nil
		}
	}
	if !live {
		return errs, nil
	}
	tx, err := g.db.BeginTx(ctx, nil)
	if err != nil {
		return errs, err
	}
	for i, p := range batch {
		if p.barrier || errs[i] != nil {
			continue
		}
		if err := p.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if _, err := tx.ExecContext(ctx, `SAVEPOINT sqldb_item`); err != nil {
			_ = tx.Rollback()
			return errs, err
		}
		if errs[i] = g.each(ctx, tx, p.item); errs[i] != nil {
			errs[i] = TimedOut(ctx, errs[i])
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

// Queued is how many items wait behind the batch being written (for metrics and tests).
func (g *GroupCommitter[T]) Queued() int { return len(g.queue) }

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
