package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// ErrClosed is returned by Submit after Close.
var ErrClosed = errors.New("sqldb: group committer closed")

// GroupCommitter writes items submitted concurrently in shared transactions: while one transaction
// commits (and fsyncs), newly submitted items queue up and go into the next one. Each Submit returns
// only after its item's transaction committed, so callers get durability at a fraction of the
// per-item fsync cost.
type GroupCommitter[T any] struct {
	db       *DB
	write    func(ctx context.Context, tx *sql.Tx, items []T) error
	maxBatch int

	queue chan pending[T]
	stop  chan struct{}
	done  chan struct{}

	mu     sync.RWMutex // Submit holds it shared while enqueuing; Close exclusively
	closed bool
}

type pending[T any] struct {
	item  T
	reply chan error
}

// NewGroupCommitter starts the writer. write must store all items or fail as a whole.
func NewGroupCommitter[T any](db *DB, maxBatch int, write func(ctx context.Context, tx *sql.Tx, items []T) error) *GroupCommitter[T] {
	g := &GroupCommitter[T]{db: db, write: write, maxBatch: maxBatch,
		queue: make(chan pending[T], maxBatch*4), stop: make(chan struct{}), done: make(chan struct{})}
	go g.loop()
	return g
}

// Submit stores item durably, together with whatever else is waiting.
func (g *GroupCommitter[T]) Submit(ctx context.Context, item T) error {
	wait, err := g.Enqueue(ctx, item)
	if err != nil {
		return err
	}
	return wait()
}

// Enqueue queues item and returns at once with a function that waits for its commit. Items are
// written in the order they were enqueued, so a caller that enqueues under its own lock keeps its
// order in the database without holding the lock through the fsync.
func (g *GroupCommitter[T]) Enqueue(ctx context.Context, item T) (wait func() error, err error) {
	p := pending[T]{item: item, reply: make(chan error, 1)}
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return nil, ErrClosed
	}
	select {
	case g.queue <- p:
		g.mu.RUnlock()
	case <-ctx.Done():
		g.mu.RUnlock()
		return nil, ctx.Err()
	}
	// Once queued the item will be written: wait for the outcome even if ctx ends, so the caller
	// never reports failure for something that was stored.
	return func() error { return <-p.reply }, nil
}

func (g *GroupCommitter[T]) loop() {
	defer close(g.done)
	batch := make([]pending[T], 0, g.maxBatch)
	items := make([]T, 0, g.maxBatch)
	for {
		var first pending[T]
		select {
		case first = <-g.queue:
		case <-g.stop:
			g.drain(batch, items)
			return
		}
		batch = append(batch[:0], first)
	fill:
		for len(batch) < g.maxBatch {
			select {
			case p := <-g.queue:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		g.flush(batch, items)
	}
}

func (g *GroupCommitter[T]) flush(batch []pending[T], items []T) {
	items = items[:0]
	for _, p := range batch {
		items = append(items, p.item)
	}
	ctx := context.Background()
	err := g.db.InTx(ctx, func(tx *sql.Tx) error { return g.write(ctx, tx, items) })
	for _, p := range batch {
		p.reply <- err
	}
}

// drain writes what was queued before Close.
func (g *GroupCommitter[T]) drain(batch []pending[T], items []T) {
	for {
		batch = batch[:0]
		for len(batch) < g.maxBatch {
			select {
			case p := <-g.queue:
				batch = append(batch, p)
				continue
			default:
			}
			break
		}
		if len(batch) == 0 {
			return
		}
		g.flush(batch, items)
	}
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
