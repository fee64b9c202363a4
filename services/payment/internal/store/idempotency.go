package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/payment/internal/idempotency"
)

// ClaimKey makes rec (State InFlight) the owner of its (caller, key), or returns the record that
// already owns it (claimed false). The unique key decides between concurrent claims in any replica:
// on PostgreSQL a second insert waits for the first transaction and then sees its row. A record past
// retention is replaced.
func (t *Tx) ClaimKey(ctx context.Context, rec idempotency.Record, retention time.Duration) (existing idempotency.Record, claimed bool, err error) {
	rec.CreatedAt = t.now
	for range 2 {
		n, err := t.exec(ctx, `INSERT INTO idempotency (caller, idem_key, method, fingerprint, state, object_id, created_at)
			VALUES (?,?,?,?,?,?,?) ON CONFLICT (caller, idem_key) DO NOTHING`,
			rec.Caller, rec.Key, rec.Method, rec.Fingerprint, rec.State, rec.ObjectID, nanos(rec.CreatedAt))
		if err != nil {
			return existing, false, err
		}
		if n == 1 {
			return rec, true, nil
		}
		existing, err = t.key(ctx, rec.Caller, rec.Key)
		if err != nil {
			return existing, false, err
		}
		if !existing.Expired(t.now, retention) {
			return existing, false, nil
		}
		if _, err := t.exec(ctx, `DELETE FROM idempotency WHERE caller = ? AND idem_key = ? AND created_at = ?`,
			rec.Caller, rec.Key, nanos(existing.CreatedAt)); err != nil {
			return existing, false, err
		}
	}
	return existing, false, errs.New(errs.KindUnavailable, "idempotency key %q is being replaced concurrently; retry", rec.Key)
}

const qKey = `SELECT method, fingerprint, state, object_id, response, err_kind, err_msg, created_at
	FROM idempotency WHERE caller = ? AND idem_key = ?`

func (t *Tx) key(ctx context.Context, caller, key string) (idempotency.Record, error) {
	return scanKey(t.queryRow(ctx, qKey, caller, key), caller, key)
}

// FinishedKey reads the record of (caller, key) outside any write transaction if it is finished and
// within retention (found false otherwise: none, in flight or expired, which only a claim decides).
// A finished record never changes until it expires, so a replay is answered from it without
// waiting for the writer (SQLite) or taking a row lock (PostgreSQL).
func (s *Store) FinishedKey(ctx context.Context, caller, key string, retention time.Duration) (rec idempotency.Record, found bool, err error) {
	rec, err = scanKey(s.queryRow(ctx, qKey, caller, key), caller, key)
	if errors.Is(err, sql.ErrNoRows) {
		return rec, false, nil
	}
	if err != nil || rec.State != idempotency.Done || rec.Expired(s.now(), retention) {
		return rec, false, err
	}
	return rec, true, nil
}

func scanKey(row scanner, caller, key string) (idempotency.Record, error) {
	r := idempotency.Record{Caller: caller, Key: key}
	var resp string
	var created int64
	err := row.Scan(&r.Method, &r.Fingerprint, &r.State, &r.ObjectID, &resp, &r.ErrKind, &r.ErrMsg, &created)
	r.Response, r.CreatedAt = []byte(resp), fromNanos(created)
	return r, err
}

// CompleteKey stores the result of the request that owns (caller, key), if it is still in flight.
func (t *Tx) CompleteKey(ctx context.Context, caller, key string, response []byte, fail error) error {
	kind, msg := errs.Kind(0), ""
	if fail != nil {
		kind, msg = errs.KindOf(fail), fail.Error()
	}
	_, err := t.exec(ctx, `UPDATE idempotency SET state = ?, response = ?, err_kind = ?, err_msg = ?
		WHERE caller = ? AND idem_key = ? AND state = ?`, idempotency.Done, string(response), int(kind), msg, caller, key, idempotency.InFlight)
	return err
}

// CompleteKeysOf stores response for every in-flight record of the method that acted on objectID:
// the janitor's way of finishing the record of a request whose process died.
func (t *Tx) CompleteKeysOf(ctx context.Context, method, objectID string, response []byte) error {
	_, err := t.exec(ctx, `UPDATE idempotency SET state = ?, response = ? WHERE object_id = ? AND method = ? AND state = ?`,
		idempotency.Done, string(response), objectID, method, idempotency.InFlight)
	return err
}

// pruneBatch bounds the records one statement of PruneKeys deletes, and prunePass the statements
// of one call. A statement holds the write lock (on SQLite the database's only one, which every
// lane waits for) for milliseconds, never for the backlog a long pause leaves behind: a day's
// records at a few thousand a second are hundreds of millions, which one DELETE would hold the lock
// for minutes to remove. What one call leaves, the janitor's next pass goes on with; a pass removes
// far more than the records that expire between two passes.
var (
	pruneBatch = 2000
	prunePass  = 50
)

// pruneKeysQuery deletes the oldest pruneBatch finished records before a cutoff, through
// idempotency_created.
const pruneKeysQuery = `DELETE FROM idempotency WHERE (caller, idem_key) IN (
	SELECT caller, idem_key FROM idempotency WHERE state = ? AND created_at < ? ORDER BY created_at LIMIT ?)`

// PruneKeys deletes finished records created before cutoff, oldest first, in statements of at
// most pruneBatch records and at most prunePass of them, and reports how many it deleted.
func (s *Store) PruneKeys(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	for range prunePass {
		res, err := s.exec(ctx, pruneKeysQuery, idempotency.Done, nanos(cutoff), pruneBatch)
		if err != nil {
			return total, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, err
		}
		if total += n; n < int64(pruneBatch) || ctx.Err() != nil {
			break
		}
	}
	return total, nil
}

// DeleteKey removes the record of (caller, key): the request it belonged to provably did nothing.
func (t *Tx) DeleteKey(ctx context.Context, caller, key string) error {
	_, err := t.exec(ctx, `DELETE FROM idempotency WHERE caller = ? AND idem_key = ? AND state = ?`, caller, key, idempotency.InFlight)
	return err
}

// StaleKey is an in-flight record left by a request that did not finish (its process died).
type StaleKey struct {
	Caller, Key, Method, ObjectID string
	CreatedAt                     int64 // Unix nanoseconds: with Caller and Key, the key's place in StaleKeys' order
}

// staleKeysQuery has the state as a literal: a bound one would not match the partial index
// idempotency_in_flight.
const staleKeysQuery = `SELECT caller, idem_key, method, object_id, created_at FROM idempotency
	WHERE state = '` + string(idempotency.InFlight) + `' AND created_at <= ? AND (created_at, caller, idem_key) > (?, ?, ?)
	ORDER BY created_at, caller, idem_key LIMIT ?`

// StaleKeys lists in-flight records created before olderThan, oldest first, from the one after
// after (the zero StaleKey: from the start), at most limit.
func (s *Store) StaleKeys(ctx context.Context, olderThan time.Time, after StaleKey, limit int) ([]StaleKey, error) {
	rows, err := s.query(ctx, staleKeysQuery, nanos(olderThan), after.CreatedAt, after.Caller, after.Key, limit)
	return collect(rows, err, func(r scanner) (k StaleKey, err error) {
		err = r.Scan(&k.Caller, &k.Key, &k.Method, &k.ObjectID, &k.CreatedAt)
		return k, err
	})
}
