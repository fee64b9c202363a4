package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// batcher is group commit for SQLite, where one connection writes at a time and every commit
// fsyncs: while one batch commits, the transactions submitted meanwhile queue up and run in the next
// batch, each in its own savepoint, so a transaction that fails is undone alone and the others
// commit together with one fsync. Each caller is answered only after its batch committed.
//
// The writer goroutine is started by newBatcher and stopped by close, after it has written what was
// queued; it blocks only on the database.
type batcher struct {
	s     *Store
	queue chan job
	stop  chan struct{}
	done  chan struct{}
}

type job struct {
	ctx   context.Context
	fn    func(*Tx) error
	reply chan error
}

// maxBatch bounds the transactions committed together (and the queue, at 8 batches).
const maxBatch = 128

func newBatcher(s *Store) *batcher {
	b := &batcher{s: s, queue: make(chan job, 8*maxBatch), stop: make(chan struct{}), done: make(chan struct{})}
	go b.loop()
	return b
}

var errStoreClosed = errors.New("store: closed")

func (b *batcher) submit(ctx context.Context, fn func(*Tx) error) error {
	j := job{ctx: ctx, fn: fn, reply: make(chan error, 1)}
	select {
	case b.queue <- j:
	case <-ctx.Done():
		return ctx.Err()
	case <-b.stop:
		return errStoreClosed
	}
	// Once queued the transaction runs: wait for its outcome even if ctx ends, so a caller never
	// reports a failure for something that was committed.
	return <-j.reply
}

func (b *batcher) loop() {
	defer close(b.done)
	batch := make([]job, 0, maxBatch)
	for {
		select {
		case j := <-b.queue:
			batch = append(batch[:0], j)
		case <-b.stop:
			for {
				select {
				case j := <-b.queue:
					b.run([]job{j})
				default:
					return
				}
			}
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case j := <-b.queue:
				batch = append(batch, j)
			default:
				break fill
			}
		}
		b.run(batch)
	}
}

func (b *batcher) run(batch []job) {
	errs := make([]error, len(batch))
	err := func() error {
		tx, err := b.s.db.BeginTx(context.Background(), nil)
		if err != nil {
			return err
		}
		now := b.s.now()
		for i, j := range batch {
			if err := j.ctx.Err(); err != nil {
				errs[i] = err
				continue
			}
			if _, err := tx.Exec(`SAVEPOINT job`); err != nil {
				_ = tx.Rollback()
				return err
			}
			if errs[i] = j.fn(&Tx{tx: tx, s: b.s, now: now}); errs[i] != nil {
				if _, err := tx.Exec(`ROLLBACK TO SAVEPOINT job`); err != nil {
					_ = tx.Rollback()
					return fmt.Errorf("store: undoing a failed transaction of a batch: %w", err)
				}
			}
			if _, err := tx.Exec(`RELEASE SAVEPOINT job`); err != nil {
				_ = tx.Rollback()
				return err
			}
		}
		return tx.Commit()
	}()
	for i, j := range batch {
		if err != nil && errs[i] == nil {
			errs[i] = err
		}
		j.reply <- errs[i]
	}
}

func (b *batcher) close() {
	close(b.stop)
	<-b.done
}

// readDB is the handle reads go through: on SQLite a second connection, so reads in WAL mode do not
// wait behind the writer's batch.
func (s *Store) readDB() *sql.DB {
	if s.rdb != nil {
		return s.rdb.DB
	}
	return s.db.DB
}
