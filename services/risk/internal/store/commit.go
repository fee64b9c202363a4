package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/pkg/sqldb"
	"github.com/bourse-dev/bourse/services/risk/internal/engine"
)

// The committer is the store's only writer of events and snapshots, over a fail-stop
// sqldb.GroupCommitter. The engine applies an event in memory as soon as it is queued, so the log
// is only a faithful history if it is written strictly in queue order with no hole: once one
// transaction fails, nothing queued after it may be written (a later event depends on the lost
// one, and replay would stop at the gap). So a failure stops the committer for good: the failed
// batch, everything queued behind it and every later Persist fail with Unavailable, and onFail is
// told at once, before any waiter is answered.
//
// A snapshot is written alone, after the events before it are committed, and its failure is not
// fatal: it loses nothing (the events it covers are committed) and leaves no hole, so the caller
// logs it and tries again later.
//
// Ownership: Open starts the shared committer's writer; Close stops it after writing what was
// queued. The writer blocks only on the database.

// ErrClosed is returned by Persist after Close.
var ErrClosed = sqldb.ErrClosed

// job is one queued write: an event, or a snapshot when snap is set.
type job struct {
	ev   engine.Event
	snap *snapshotJob
}

type committer struct {
	db      *sqldb.DB
	insert  string
	g       *sqldb.GroupCommitter[job]
	pending atomic.Int64 // events queued and not yet answered
}

func newCommitter(db *sqldb.DB, maxBatch int, onFail func(error)) *committer {
	c := &committer{db: db, insert: db.Rebind(`INSERT INTO risk_events (seq, kind, payload) VALUES (?, ?, ?)`)}
	o := sqldb.Options{MaxBatch: maxBatch, FailStop: true}
	if onFail != nil {
		o.OnFail = func(err error) { onFail(unavailable(err)) }
	}
	c.g = sqldb.NewGroupCommitterWith(db, o, c.write)
	return c
}

// unavailable turns the error of the stopped committer into the Unavailable every caller gets
// from then on; any other error (a failed snapshot, a closed store, an ended context) is kept.
func unavailable(err error) error {
	if errors.Is(err, sqldb.ErrStopped) {
		return errs.Wrap(errs.KindUnavailable, err, "risk store failed; nothing more is accepted until restart")
	}
	return err
}

// err is the failure that stopped the committer, as Unavailable, or nil.
func (c *committer) err() error { return unavailable(c.g.Err()) }

// fail stops the committer for a failure met outside it (see ReserveIDs).
func (c *committer) fail(cause error) error { return unavailable(c.g.Fail(cause)) }

// persist queues ev in order; reply gets its outcome. Once stopped or closed nothing is queued.
func (c *committer) persist(ctx context.Context, ev engine.Event, reply chan<- error) error {
	c.pending.Add(1)
	err := c.g.EnqueueFunc(ctx, job{ev: ev}, func(err error) {
		// The committer records a failure before it answers anyone: pending cannot reach 0
		// while a failure is unseen (see Store.Sync).
		c.pending.Add(-1)
		reply <- unavailable(err)
	})
	if err != nil {
		c.pending.Add(-1)
		return unavailable(err)
	}
	return nil
}

// sync waits for every event queued so far; it costs nothing when none is in flight.
func (c *committer) sync(ctx context.Context) error {
	if c.pending.Load() == 0 {
		return c.err()
	}
	return unavailable(c.g.Sync(ctx))
}

// snapshot writes s alone, after the events queued before it.
func (c *committer) snapshot(ctx context.Context, s *snapshotJob) error {
	return unavailable(c.g.SubmitWith(ctx, job{snap: s}, sqldb.ItemOptions{NonFatal: true}))
}

// write stores one batch: events, or a snapshot alone.
func (c *committer) write(ctx context.Context, tx *sql.Tx, jobs []job) error {
	if len(jobs) == 1 && jobs[0].snap != nil {
		return jobs[0].snap.write(ctx, c.db, tx)
	}
	stmt, err := tx.PrepareContext(ctx, c.insert)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, j := range jobs {
		if j.snap != nil {
			return fmt.Errorf("snapshot at event %d batched with events", j.snap.seq) // never: snapshots are alone
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
}

// close writes what is queued and stops the writer.
func (c *committer) close() { c.g.Close() }
