// Package store keeps the risk engine's durable events in SQLite or PostgreSQL and replays them on
// start. Writes go through a group committer: events enqueued in the engine's order are committed
// together, and each caller waits for its own event's commit before answering its client.
package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"iter"

	"github.com/bourse-dev/bourse/pkg/sqldb"
	"github.com/bourse-dev/bourse/services/risk/internal/engine"
)

var migrations = []string{
	`CREATE TABLE risk_events (
		seq     BIGINT PRIMARY KEY,
		kind    TEXT NOT NULL,
		payload TEXT NOT NULL
	)`,
}

// maxBatch bounds the events in one transaction.
const maxBatch = 512

// Store is the event log.
type Store struct {
	db     *sqldb.DB
	commit *sqldb.GroupCommitter[engine.Event]
}

// Open connects to url (see sqldb.Open) and prepares the schema.
func Open(ctx context.Context, url string) (*Store, error) {
	db, err := sqldb.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, migrations); err != nil {
		db.Close()
		return nil, err
	}
	s := &Store{db: db}
	insert := db.Rebind(`INSERT INTO risk_events (seq, kind, payload) VALUES (?, ?, ?)`)
	s.commit = sqldb.NewGroupCommitter(db, maxBatch, func(ctx context.Context, tx *sql.Tx, events []engine.Event) error {
		stmt, err := tx.PrepareContext(ctx, insert)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, ev := range events {
			payload, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			if _, err := stmt.ExecContext(ctx, int64(ev.Seq), string(ev.Kind), string(payload)); err != nil {
				return fmt.Errorf("event %d: %w", ev.Seq, err)
			}
		}
		return nil
	})
	return s, nil
}

// Dialect says which database is behind the store.
func (s *Store) Dialect() sqldb.Dialect { return s.db.Dialect }

// Events yields the stored events in order.
func (s *Store) Events(ctx context.Context) iter.Seq2[engine.Event, error] {
	return func(yield func(engine.Event, error) bool) {
		rows, err := s.db.QueryContext(ctx, `SELECT payload FROM risk_events ORDER BY seq`)
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
	waits []func() error
}

// NewPersister starts collecting for one engine call.
func (s *Store) NewPersister(ctx context.Context) *Persister {
	return &Persister{store: s, ctx: ctx}
}

// Persist is the engine's PersistFunc: it queues the event in order and returns at once.
func (p *Persister) Persist(ev engine.Event) error {
	wait, err := p.store.commit.Enqueue(p.ctx, ev)
	if err != nil {
		return err
	}
	p.waits = append(p.waits, wait)
	return nil
}

// Wait blocks until every persisted event is committed. An error here means an event the engine has
// already applied is not durable: the caller must stop serving.
func (p *Persister) Wait() error {
	for _, w := range p.waits {
		if err := w(); err != nil {
			return err
		}
	}
	return nil
}

// Close commits what is queued and closes the database.
func (s *Store) Close() error {
	s.commit.Close()
	return s.db.Close()
}
