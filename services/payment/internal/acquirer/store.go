package acquirer

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/bourse-dev/bourse/pkg/sqldb"
)

// ErrStoreClosed is returned by Append after Close.
var ErrStoreClosed = errors.New("acquirer store closed")

var migrations = []string{
	`CREATE TABLE acquirer_operations (
		seq INTEGER PRIMARY KEY,
		kind TEXT NOT NULL,
		key TEXT NOT NULL,
		fingerprint TEXT NOT NULL,
		outcome INTEGER NOT NULL,
		decline_code TEXT NOT NULL,
		message TEXT NOT NULL,
		ref TEXT NOT NULL,
		amount BIGINT NOT NULL,
		currency TEXT NOT NULL,
		method TEXT NOT NULL,
		token TEXT NOT NULL,
		capture INTEGER NOT NULL,
		authorize_key TEXT NOT NULL,
		destination TEXT NOT NULL,
		metadata TEXT NOT NULL,
		acted_at BIGINT NOT NULL,
		UNIQUE (kind, key)
	)`,
}

// Store keeps one row per operation, keyed by (kind, key), and writes concurrent appends in shared
// transactions (a fail-stop sqldb.GroupCommitter): each append's callback runs once its transaction
// is on disk, in append order.
//
// Fail-stop: once a commit fails, nothing queued after it is written (the log never has a hole: a
// capture is never durable without its authorization), every later append fails, and OnFail runs
// once so the process can exit and rebuild from what is durable.
//
// The committer's writer goroutine is started by OpenStore and stopped by Close.
type Store struct {
	db      *sqldb.DB
	commit  *sqldb.GroupCommitter[Operation]
	durable atomic.Uint64 // highest committed seq
}

// maxBatch bounds one transaction; the queue holds a few batches, then Append waits (backpressure).
const maxBatch = 256

// OpenStore opens (creating if needed) the database at url and starts the writer. onFail runs once,
// from the writer, when a commit fails.
func OpenStore(ctx context.Context, url string, onFail func(error)) (*Store, error) {
	db, err := sqldb.Open(ctx, url)
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, migrations); err != nil {
		db.Close()
		return nil, err
	}
	s := &Store{db: db}
	s.commit = sqldb.NewGroupCommitterWith(db, sqldb.Options{MaxBatch: maxBatch, FailStop: true, OnFail: onFail}, s.write)
	return s, nil
}

// Load returns every stored operation in seq order.
func (s *Store) Load(ctx context.Context) ([]Operation, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, kind, key, fingerprint, outcome, decline_code, message, ref,
		amount, currency, method, token, capture, authorize_key, destination, metadata, acted_at
		FROM acquirer_operations ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("load operations: %w", err)
	}
	defer rows.Close()
	var ops []Operation
	for rows.Next() {
		var op Operation
		var kind, meta string
		var capture int
		var acted int64
		if err := rows.Scan(&op.Seq, &kind, &op.Key, &op.Fingerprint, &op.Outcome, &op.DeclineCode, &op.Message, &op.Ref,
			&op.Amount, &op.Currency, &op.Method, &op.Token, &capture, &op.AuthorizeKey, &op.Destination, &meta, &acted); err != nil {
			return nil, fmt.Errorf("load operations: %w", err)
		}
		op.Kind, op.Capture, op.ActedAt = Kind(kind), capture != 0, time.Unix(0, acted).UTC()
		if err := json.Unmarshal([]byte(meta), &op.Metadata); err != nil {
			return nil, fmt.Errorf("load operation %d: metadata: %w", op.Seq, err)
		}
		ops = append(ops, op)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load operations: %w", err)
	}
	if n := len(ops); n > 0 {
		s.durable.Store(ops[n-1].Seq)
	}
	return ops, nil
}

// Append queues op (callers append in seq order) and returns at once; done runs with the commit's
// outcome and must not block. It waits only when the queue is full, and fails (done never runs)
// after Close or after a failed commit.
func (s *Store) Append(op Operation, done func(error)) error {
	seq := op.Seq // the callback keeps only this, not a copy of op
	err := s.commit.EnqueueFunc(context.Background(), op, func(err error) {
		if err == nil {
			s.durable.Store(seq) // answers come in append order, so this only grows
		}
		done(err)
	})
	if errors.Is(err, sqldb.ErrClosed) {
		return ErrStoreClosed
	}
	return err
}

// Durable is the highest seq on disk.
func (s *Store) Durable() uint64 { return s.durable.Load() }

// Err is the commit failure that stopped the store, or nil.
func (s *Store) Err() error { return s.commit.Err() }

func (s *Store) write(ctx context.Context, tx *sql.Tx, ops []Operation) error {
	if err := s.insert(ctx, tx, ops); err != nil {
		return fmt.Errorf("commit operations %d-%d: %w", ops[0].Seq, ops[len(ops)-1].Seq, err)
	}
	return nil
}

func (s *Store) insert(ctx context.Context, tx *sql.Tx, ops []Operation) error {
	stmt, err := tx.PrepareContext(ctx, s.db.Rebind(`INSERT INTO acquirer_operations (seq, kind, key, fingerprint,
		outcome, decline_code, message, ref, amount, currency, method, token, capture, authorize_key, destination,
		metadata, acted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`))
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, op := range ops {
		meta, err := json.Marshal(op.Metadata)
		if err != nil {
			return err
		}
		capture := 0
		if op.Capture {
			capture = 1
		}
		if _, err := stmt.ExecContext(ctx, op.Seq, string(op.Kind), op.Key, op.Fingerprint, op.Outcome, op.DeclineCode,
			op.Message, op.Ref, op.Amount, op.Currency, op.Method, op.Token, capture, op.AuthorizeKey, op.Destination,
			string(meta), op.ActedAt.UnixNano()); err != nil {
			return err
		}
	}
	return nil
}

// Close writes what is queued, stops the writer and closes the database.
func (s *Store) Close() error {
	s.commit.Close()
	return s.db.Close()
}

// DB is the database, for tests that inject a failing commit.
func (s *Store) DB() *sqldb.DB { return s.db }
