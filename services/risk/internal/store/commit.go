package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/pkg/sqldb"
	"github.com/bourse-dev/bourse/services/risk/internal/engine"
)

// The committer is the store's only writer of events and snapshots. The engine applies an event in
// memory as soon as it is queued, so the log is only a faithful history if it is written strictly
// in queue order with no hole: once one transaction fails, nothing queued after it may be written
// (a later event depends on the lost one, and replay would stop at the gap). So a failure poisons
// the committer for good: the failed batch, everything queued behind it and every later Persist
// fail with Unavailable, and onFail is told at once, before any waiter is answered.
//
// Ownership: Open starts the loop goroutine; Close stops it after writing what was queued. The
// loop blocks only on the database.

// ErrClosed is returned by Persist after Close.
var ErrClosed = errors.New("risk store: closed")

// job is one queued write: an event, a snapshot or a barrier (neither: only its place in the order
// matters).
type job struct {
	ev    engine.Event
	isEv  bool
	snap  *snapshotJob
	reply chan error
}

type committer struct {
	db       *sqldb.DB
	insert   string
	onFail   func(error)
	maxBatch int

	queue chan job
	stop  chan struct{}
	done  chan struct{}

	mu     sync.RWMutex // enqueue holds it shared; Close exclusively
	closed bool

	failed  atomic.Pointer[error] // the first failure; set before any waiter hears of it
	pending atomic.Int64          // events queued and not yet answered
}

func newCommitter(db *sqldb.DB, maxBatch int, onFail func(error)) *committer {
	c := &committer{
		db:       db,
		insert:   db.Rebind(`INSERT INTO risk_events (seq, kind, payload) VALUES (?, ?, ?)`),
		onFail:   onFail,
		maxBatch: maxBatch,
		queue:    make(chan job, maxBatch*4),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go c.loop()
	return c
}

// err is the poison, if any, as the Unavailable error every caller gets from then on.
func (c *committer) err() error {
	if p := c.failed.Load(); p != nil {
		return *p
	}
	return nil
}

func (c *committer) poison(cause error) {
	var err error = errs.Wrap(errs.KindUnavailable, cause, "risk store failed; nothing more is accepted until restart")
	if c.failed.CompareAndSwap(nil, &err) && c.onFail != nil {
		c.onFail(err)
	}
}

// enqueue queues j in order. Once poisoned or closed nothing more is queued.
func (c *committer) enqueue(ctx context.Context, j job) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return ErrClosed
	}
	if err := c.err(); err != nil {
		return err
	}
	if j.isEv {
		c.pending.Add(1)
	}
	select {
	case c.queue <- j:
		return nil
	case <-ctx.Done():
		if j.isEv {
			c.pending.Add(-1)
		}
		return ctx.Err()
	}
}

func (c *committer) loop() {
	defer close(c.done)
	batch := make([]job, 0, c.maxBatch)
	var carry *job // a non-event job that ended the previous batch
	for {
		batch = batch[:0]
		if carry != nil {
			batch = append(batch, *carry)
			carry = nil
		} else {
			select {
			case j := <-c.queue:
				batch = append(batch, j)
			case <-c.stop:
				c.drain()
				return
			}
		}
		carry = c.fill(&batch)
		c.run(batch)
	}
}

// fill adds queued events to batch without waiting. A snapshot ends a batch: it is written in its
// own transaction, after the events before it.
func (c *committer) fill(batch *[]job) *job {
	if (*batch)[0].snap != nil {
		return nil
	}
	for len(*batch) < c.maxBatch {
		select {
		case j := <-c.queue:
			if j.snap != nil {
				return &j
			}
			*batch = append(*batch, j)
		default:
			return nil
		}
	}
	return nil
}

// drain writes what was queued before Close.
func (c *committer) drain() {
	for {
		select {
		case j := <-c.queue:
			batch := []job{j}
			if carry := c.fill(&batch); carry != nil {
				c.run(batch)
				batch = []job{*carry}
			}
			c.run(batch)
		default:
			return
		}
	}
}

// run writes one batch (events and barriers, or one snapshot) and answers its jobs.
func (c *committer) run(batch []job) {
	err := c.err()
	if err == nil {
		if s := batch[0].snap; s != nil {
			// A failed snapshot loses nothing (the events it covers are committed) and leaves no
			// hole, so it does not poison: the caller logs it and tries again later.
			err = c.db.InTx(context.Background(), func(tx *sql.Tx) error { return s.write(context.Background(), c.db, tx) })
			batch[0].reply <- err
			return
		}
		if err = c.writeEvents(batch); err != nil {
			c.poison(err)
			err = c.err()
		}
	}
	for _, j := range batch {
		if j.isEv {
			c.pending.Add(-1)
		}
		j.reply <- err
	}
}

func (c *committer) writeEvents(batch []job) error {
	if !slices.ContainsFunc(batch, func(j job) bool { return j.isEv }) {
		return nil // barriers only
	}
	ctx := context.Background()
	return c.db.InTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, c.insert)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, j := range batch {
			if !j.isEv {
				continue
			}
			payload, err := json.Marshal(j.ev)
			if err != nil {
				return err
			}
			if _, err := stmt.ExecContext(ctx, int64(j.ev.Seq), string(j.ev.Kind), string(payload)); err != nil {
				return fmt.Errorf("event %d: %w", j.ev.Seq, err)
			}
		}
		return nil
	})
}

// close writes what is queued and stops the loop.
func (c *committer) close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.stop)
	}
	c.mu.Unlock()
	<-c.done
}
