package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/pkg/sqldb"
	"github.com/bourse-dev/bourse/services/payment/internal/domain"
)

// AddEvent appends an event about object (its JSON is the event's data) to the log.
func (t *Tx) AddEvent(ctx context.Context, typ, account, objectID string, object any) error {
	data, err := json.Marshal(object)
	if err != nil {
		return err
	}
	id := domain.NewID("evt")
	q := `INSERT INTO events (id, type, account_id, object_id, data, created_at) VALUES (?,?,?,?,?,?)`
	if t.s.Dialect() == sqldb.Postgres {
		// The event's place in the log (see ListEvents): at least the inserting transaction's id,
		// so it sorts after everything a reader below that id has returned, and at least the
		// highest already committed, so an event caused by another one (written after reading its
		// committed state) never sorts before it, even when this transaction took its id first.
		q = `INSERT INTO events (id, type, account_id, object_id, data, created_at, xid) VALUES (?,?,?,?,?,?,
			GREATEST(pg_current_xact_id(), (SELECT xid FROM events ORDER BY xid DESC LIMIT 1)))`
	}
	if _, err = t.exec(ctx, q, id, typ, account, objectID, string(data), nanos(t.now)); err != nil {
		return err
	}
	return t.addDeliveries(ctx, id, typ, account)
}

// ListEvents returns up to limit events after the one whose sequence is after (0: from the start),
// in log order. A client pages by passing the last sequence it got: no committed event is ever
// behind its cursor.
//
// SQLite has one writer at a time, so the log order is sequence order. On PostgreSQL sequence
// numbers are taken at insert and concurrent transactions commit in any order, so a reader that
// had seen sequence N could later miss a lower one committed after it read. There the log order is
// (xid, seq), where an event's xid is at least its inserting transaction's id (AddEvent), and only
// events with an xid below the reading snapshot's xmin are returned: every transaction below xmin
// has ended, so an event that becomes visible later belongs to a transaction at or above xmin, its
// xid is too, and it sorts after everything returned.
// The price: an event waits until every transaction that began before its own has ended (a
// transaction left open elsewhere in the cluster holds the log back, never loses it).
func (s *Store) ListEvents(ctx context.Context, account, typ string, after int64, limit int) ([]domain.Event, error) {
	q, args, order := `SELECT seq, id, type, account_id, object_id, data, created_at FROM events WHERE seq > ?`, []any{after}, ` ORDER BY seq`
	if s.Dialect() == sqldb.Postgres {
		q, args, order = `SELECT seq, id, type, account_id, object_id, data, created_at FROM events
			WHERE xid < pg_snapshot_xmin(pg_current_snapshot())`, nil, ` ORDER BY xid, seq`
		if after > 0 {
			q, args = q+` AND (xid, seq) > ((SELECT xid FROM events WHERE seq = ?), ?)`, append(args, after, after)
		}
	}
	if account != "" {
		q, args = q+` AND account_id = ?`, append(args, account)
	}
	if typ != "" {
		q, args = q+` AND type = ?`, append(args, typ)
	}
	out, err := s.scanEvents(ctx, q+order+` LIMIT ?`, append(args, limit)...)
	if err != nil || len(out) > 0 || after == 0 {
		return out, err
	}
	// Nothing after it: tell a cursor at the end of the log from one that names no event.
	var n int
	if err := s.queryRow(ctx, `SELECT COUNT(*) FROM events WHERE seq = ?`, after).Scan(&n); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, errs.Invalid("after_sequence", "no event has sequence %d (pass the last sequence received)", after)
	}
	return nil, nil
}

func (s *Store) scanEvents(ctx context.Context, q string, args ...any) ([]domain.Event, error) {
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []domain.Event
	for rows.Next() {
		var e domain.Event
		var data string
		var created int64
		if err := rows.Scan(&e.Seq, &e.ID, &e.Type, &e.AccountID, &e.ObjectID, &data, &created); err != nil {
			return nil, err
		}
		e.Data, e.CreatedAt = []byte(data), fromNanos(created)
		out = append(out, e)
	}
	return out, rows.Err()
}

// OutboxItem is one message to deliver to another service, written in the same transaction as the
// state change that caused it.
type OutboxItem struct {
	ID      int64
	Kind    string // "risk_credit"
	Ref     string // unique per kind: the risk ref
	Payload []byte
	Tries   int
}

// Enqueue adds an outbox item (once per kind and ref).
func (t *Tx) Enqueue(ctx context.Context, kind, ref string, payload any) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	_, err = t.exec(ctx, `INSERT INTO outbox (kind, ref, payload, next_at, created_at) VALUES (?,?,?,?,?)`,
		kind, ref, string(b), nanos(t.now), nanos(t.now))
	return err
}

// ClaimOutbox takes up to limit due items for lease: they are not due again until the lease passes,
// so another replica (or this one after a crash) retries only an item whose delivery was not
// finished in time. On PostgreSQL rows locked by another replica's claim are skipped.
func (s *Store) ClaimOutbox(ctx context.Context, limit int, lease time.Duration) ([]OutboxItem, error) {
	var out []OutboxItem
	skip := ""
	if s.Dialect() == sqldb.Postgres {
		skip = " FOR UPDATE SKIP LOCKED"
	}
	err := s.InTx(ctx, func(tx *Tx) error {
		out = out[:0]
		rows, err := tx.tx.QueryContext(tx.stmtCtx(ctx), s.db.Rebind(`SELECT id, kind, ref, payload, tries FROM outbox WHERE next_at <= ? ORDER BY id LIMIT ?`+skip),
			nanos(tx.now), limit)
		if err != nil {
			return err
		}
		for rows.Next() {
			var it OutboxItem
			var p string
			if err := rows.Scan(&it.ID, &it.Kind, &it.Ref, &p, &it.Tries); err != nil {
				rows.Close()
				return err
			}
			it.Payload = []byte(p)
			out = append(out, it)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for i := range out {
			if _, err := tx.exec(ctx, `UPDATE outbox SET next_at = ?, tries = tries + 1 WHERE id = ?`, nanos(tx.now.Add(lease)), out[i].ID); err != nil {
				return err
			}
			out[i].Tries++
		}
		return nil
	})
	return out, err
}

// FinishOutbox deletes a delivered item, running also (in the same transaction) what the delivery
// completes.
func (s *Store) FinishOutbox(ctx context.Context, id int64, also func(*Tx) error) error {
	return s.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.exec(ctx, `DELETE FROM outbox WHERE id = ?`, id); err != nil {
			return err
		}
		if also != nil {
			return also(tx)
		}
		return nil
	})
}

// RetryOutbox schedules an item's next try.
func (s *Store) RetryOutbox(ctx context.Context, id int64, at time.Time, lastErr string) error {
	if len(lastErr) > 500 {
		lastErr = lastErr[:500]
	}
	_, err := s.exec(ctx, `UPDATE outbox SET next_at = ?, last_error = ? WHERE id = ?`, nanos(at), lastErr, id)
	return err
}

// OutboxLen counts undelivered items.
func (s *Store) OutboxLen(ctx context.Context) (int, error) {
	var n int
	err := s.queryRow(ctx, `SELECT COUNT(*) FROM outbox`).Scan(&n)
	return n, err
}

// InsertEndpoint stores a webhook endpoint.
func (t *Tx) InsertEndpoint(ctx context.Context, caller string, e *domain.WebhookEndpoint) error {
	e.CreatedAt = t.now
	_, err := t.exec(ctx, `INSERT INTO webhook_endpoints (id, caller, account_id, url, event_types, secret, created_at) VALUES (?,?,?,?,?,?,?)`,
		e.ID, caller, e.AccountID, e.URL, jsonText(e.EventTypes), e.Secret, nanos(e.CreatedAt))
	return err
}

// LiveEndpoints counts an account's endpoints that are not deleted.
func (t *Tx) LiveEndpoints(ctx context.Context, account string) (int, error) {
	var n int
	err := t.queryRow(ctx, `SELECT COUNT(*) FROM webhook_endpoints WHERE deleted = 0 AND account_id = ?`, account).Scan(&n)
	return n, err
}

// EndpointsPage says which live endpoints Endpoints lists: of Account (all when ""), oldest first,
// after the one created at AfterNanos with AfterID when AfterID is set, at most Limit.
type EndpointsPage struct {
	Account    string
	AfterNanos int64
	AfterID    string
	Limit      int
}

// Endpoints lists a page of live endpoints.
func (s *Store) Endpoints(ctx context.Context, pg EndpointsPage) ([]domain.WebhookEndpoint, error) {
	q, args := `SELECT id, account_id, url, event_types, secret, created_at FROM webhook_endpoints WHERE deleted = 0`, []any{}
	if pg.Account != "" {
		q, args = q+` AND account_id = ?`, append(args, pg.Account)
	}
	if pg.AfterID != "" {
		q, args = q+` AND (created_at > ? OR created_at = ? AND id > ?)`, append(args, pg.AfterNanos, pg.AfterNanos, pg.AfterID)
	}
	rows, err := s.query(ctx, q+` ORDER BY created_at, id LIMIT ?`, append(args, pg.Limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []domain.WebhookEndpoint
	for rows.Next() {
		var e domain.WebhookEndpoint
		var types string
		var created int64
		if err := rows.Scan(&e.ID, &e.AccountID, &e.URL, &types, &e.Secret, &created); err != nil {
			return nil, err
		}
		_ = json.Unmarshal([]byte(types), &e.EventTypes)
		e.CreatedAt = fromNanos(created)
		out = append(out, e)
	}
	return out, rows.Err()
}

// Endpoint reads one live endpoint.
func (s *Store) Endpoint(ctx context.Context, id string) (domain.WebhookEndpoint, error) {
	var e domain.WebhookEndpoint
	var types string
	var created int64
	err := s.queryRow(ctx, `SELECT id, account_id, url, event_types, secret, created_at FROM webhook_endpoints WHERE id = ? AND deleted = 0`, id).
		Scan(&e.ID, &e.AccountID, &e.URL, &types, &e.Secret, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return e, notFound("webhook endpoint", id)
	}
	_ = json.Unmarshal([]byte(types), &e.EventTypes)
	e.CreatedAt = fromNanos(created)
	return e, err
}

// DeleteEndpoint marks an endpoint deleted.
func (s *Store) DeleteEndpoint(ctx context.Context, id string) error {
	res, err := s.exec(ctx, `UPDATE webhook_endpoints SET deleted = 1 WHERE id = ? AND deleted = 0`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound("webhook endpoint", id)
	}
	return nil
}
