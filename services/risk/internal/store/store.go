// Package store keeps the risk engine's durable state in SQLite or PostgreSQL: the event log, the
// latest snapshot of the engine, and one record per start (the incarnation, with the reservation ids
// it may hand out). Writes go through one committer: events enqueued in the engine's order are
// committed together, each caller waits for its own event's commit before answering its client,
// and the first failed commit stops all further writes (see commit.go).
package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"sync"

	"github.com/bourse-dev/bourse/pkg/sqldb"
	"github.com/bourse-dev/bourse/services/risk/internal/engine"
)

var migrations = []string{
	`CREATE TABLE risk_events (
		seq     BIGINT PRIMARY KEY,
		kind    TEXT NOT NULL,
		payload TEXT NOT NULL
	)`,
	// One row per start. The ids an incarnation may issue are below id_limit, which it raises
	// durably before it needs to; the next incarnation starts at the last limit.
	`CREATE TABLE risk_incarnations (
		incarnation BIGINT PRIMARY KEY,
		id_floor    BIGINT NOT NULL,
		id_limit    BIGINT NOT NULL
	)`,
	// The latest snapshot of the engine; events up to its seq are pruned with it.
	`CREATE TABLE risk_snapshots (
		seq  BIGINT PRIMARY KEY,
		data TEXT NOT NULL
	)`,
}

// maxBatch bounds the events in one transaction.
const maxBatch = 512

// Options tune a store.
type Options struct {
	// OnFail is called once, from the committer, when a commit fails: from that moment every write
	// fails. The service exits in it, so that nothing more is answered from memory.
	OnFail func(error)
	// IDRange is how many reservation ids one durable reservation covers; 0 means DefaultIDRange.
	IDRange uint64
}

// DefaultIDRange is 2^40 ids (2^30 counter values, with the 10 shard bits): a reservation of ids is
// written about once per 10^9 accepted orders, and 2^22 restarts fit in the 2^62 id space.
const DefaultIDRange = 1 << 40

// Store is the event log, the snapshot and the incarnation record.
type Store struct {
	db      *sqldb.DB
	commit  *committer
	idRange uint64

	idMu        sync.Mutex // serialises ReserveIDs
	incarnation uint64
	idLimit     uint64
}

// Open connects to url (see sqldb.Open) and prepares the schema.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	db, err := sqldb.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, migrations); err != nil {
		db.Close()
		return nil, err
	}
	s := &Store{db: db, idRange: opts.IDRange}
	if s.idRange == 0 {
		s.idRange = DefaultIDRange
	}
	s.commit = newCommitter(db, maxBatch, opts.OnFail)
	return s, nil
}

// Dialect says which database is behind the store.
func (s *Store) Dialect() sqldb.Dialect { return s.db.Dialect }

// Incarnation is what a start of the service records durably before it serves.
type Incarnation struct {
	Number  uint64 // 1 for the first start, then +1 on every start
	IDFloor uint64 // every id this incarnation issues is above it: the previous one's limit
	IDLimit uint64 // and below this, until ReserveIDs raises it
}

// Start records a new incarnation: the number after the last one, with reservation ids starting at
// the last one's limit. Call it once, before the engine serves.
func (s *Store) Start(ctx context.Context) (Incarnation, error) {
	var inc Incarnation
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		var last, limit int64
		row := tx.QueryRowContext(ctx, `SELECT incarnation, id_limit FROM risk_incarnations ORDER BY incarnation DESC LIMIT 1`)
		switch err := row.Scan(&last, &limit); {
		case err == sql.ErrNoRows:
		case err != nil:
			return err
		}
		inc = Incarnation{Number: uint64(last) + 1, IDFloor: uint64(limit)}
		inc.IDLimit = inc.IDFloor + s.idRange
		if inc.IDLimit > engineMaxID {
			return fmt.Errorf("reservation ids exhausted: incarnation %d would start at %d", inc.Number, inc.IDFloor)
		}
		_, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO risk_incarnations (incarnation, id_floor, id_limit) VALUES (?, ?, ?)`),
			int64(inc.Number), int64(inc.IDFloor), int64(inc.IDLimit))
		return err
	})
	if err != nil {
		return Incarnation{}, fmt.Errorf("record incarnation: %w", err)
	}
	s.idMu.Lock()
	s.incarnation, s.idLimit = inc.Number, inc.IDLimit
	s.idMu.Unlock()
	return inc, nil
}

// engineMaxID mirrors the engine's bound on ids (2^62).
const engineMaxID = 1 << 62

// ReserveIDs raises this incarnation's id limit durably so that it lies a whole range above high,
// and returns the new limit. A failure poisons the store like a failed commit: the engine may be
// waiting for ids, and the service must restart rather than hand out ids nobody recorded. A caller
// that stops waiting (ctx ends, as on shutdown) gets ctx's error and the store goes on: the engine's
// limit is only raised after a success, and a raised limit in the database that nobody was told of
// only leaves ids unused.
func (s *Store) ReserveIDs(ctx context.Context, high uint64) (uint64, error) {
	s.idMu.Lock()
	defer s.idMu.Unlock()
	if err := s.commit.err(); err != nil {
		return 0, err
	}
	limit := high + s.idRange
	if limit > engineMaxID {
		limit = engineMaxID
	}
	if limit <= s.idLimit {
		return s.idLimit, nil
	}
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE risk_incarnations SET id_limit = ? WHERE incarnation = ?`), int64(limit), int64(s.incarnation))
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return 0, fmt.Errorf("reserve reservation ids: %w", err)
		}
		return 0, s.commit.fail(fmt.Errorf("reserve reservation ids: %w", err))
	}
	s.idLimit = limit
	return limit, nil
}

// Events yields the stored events after seq in order.
func (s *Store) Events(ctx context.Context, after uint64) iter.Seq2[engine.Event, error] {
	return func(yield func(engine.Event, error) bool) {
		rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT payload FROM risk_events WHERE seq > ? ORDER BY seq`), int64(after))
		if err != nil {
			yield(engine.Event{}, err)
			return
		}
		defer rows.Close()
		for rows.Next() {
			var payload string
			if err := rows.Scan(&payload); err != nil {
				yield(engine.Event{}, err)
				return
			}
			var ev engine.Event
			if err := json.Unmarshal([]byte(payload), &ev); err != nil {
				yield(engine.Event{}, fmt.Errorf("decode stored event: %w", err))
				return
			}
			if !yield(ev, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(engine.Event{}, err)
		}
	}
}

// Persister collects the commit wait of the events an engine call persists. Use one per call:
// pass Persist to the engine, then Wait after the engine returned (and released its locks).
type Persister struct {
	store *Store
	ctx   context.Context
	waits []chan error
}

// NewPersister starts collecting for one engine call.
func (s *Store) NewPersister(ctx context.Context) *Persister {
	return &Persister{store: s, ctx: ctx}
}

// Persist is the engine's PersistFunc: it queues the event in order and returns at once. Once the
// store has failed it refuses with Unavailable, so the engine applies nothing more.
func (p *Persister) Persist(ev engine.Event) error {
	reply := make(chan error, 1)
	if err := p.store.commit.persist(p.ctx, ev, reply); err != nil {
		return err
	}
	p.waits = append(p.waits, reply)
	return nil
}

// Wait blocks until every persisted event is committed. An error here means an event the engine has
// already applied is not durable: the store is poisoned and the service must stop. A call that
// persisted nothing (an idempotent repeat answered from memory) waits instead for everything
// queued before it, since its answer may rest on an event that is not committed yet.
func (p *Persister) Wait() error {
	if len(p.waits) == 0 {
		// Not the caller's deadline: giving up early would look like a store failure.
		return p.store.Sync(context.WithoutCancel(p.ctx))
	}
	for _, w := range p.waits {
		if err := <-w; err != nil {
			return err
		}
	}
	return nil
}

// Sync returns once every event queued so far is committed, or the error that stopped the store.
// It costs nothing when no event is in flight; ctx bounds only the wait for room in the queue.
func (s *Store) Sync(ctx context.Context) error {
	return s.commit.sync(ctx)
}

// Err is the failure that stopped the store, nil while it works.
func (s *Store) Err() error { return s.commit.err() }

// Close commits what is queued and closes the database.
func (s *Store) Close() error {
	s.commit.close()
	return s.db.Close()
}
