package store

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/bourse-dev/bourse/pkg/sqldb"
	"github.com/bourse-dev/bourse/services/payment/internal/webhook"
)

// addDeliveries owes the event to every live endpoint of the account that takes its type, in the
// event's own transaction: an event is never committed without its deliveries.
func (t *Tx) addDeliveries(ctx context.Context, eventID, typ, account string) error {
	rows, err := t.query(ctx, `SELECT id, event_types FROM webhook_endpoints WHERE account_id = ? AND deleted = 0`, account)
	if err != nil {
		return err
	}
	var ids []string
	for rows.Next() {
		var id, types string
		if err := rows.Scan(&id, &types); err != nil {
			rows.Close()
			return err
		}
		var ts []string
		_ = json.Unmarshal([]byte(types), &ts)
		if len(ts) == 0 || slices.Contains(ts, typ) {
			ids = append(ids, id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, ep := range ids {
		if _, err := t.exec(ctx, `INSERT INTO webhook_deliveries (id, event_id, endpoint_id, next_at, created_at) VALUES (?,?,?,?,?)`,
			eventID+":"+ep, eventID, ep, nanos(t.now), nanos(t.now)); err != nil {
			return err
		}
	}
	return nil
}

// Webhooks is the store's side of webhook deliveries (webhook.Store).
func (s *Store) Webhooks() webhook.Store { return webhookStore{s} }

type webhookStore struct{ s *Store }

// Due claims due deliveries for q.Lease; on PostgreSQL rows another replica is claiming are skipped.
func (w webhookStore) Due(ctx context.Context, q webhook.DueQuery) ([]webhook.Delivery, error) {
	s := w.s
	var out []webhook.Delivery
	err := s.InTx(ctx, func(tx *Tx) error {
		out = out[:0]
		query, args := dueQuery(q, s.Dialect())
		rows, err := tx.query(ctx, query, args...)
		if err != nil {
			return err
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := tx.exec(ctx, `UPDATE webhook_deliveries SET next_at = ? WHERE id = ?`, nanos(q.Now.Add(q.Lease)), id); err != nil {
				return err
			}
			var d webhook.Delivery
			var typ, data, url, secret string
			var created, evCreated int64
			err := tx.queryRow(ctx, `SELECT d.id, d.attempts, d.created_at, e.id, e.type, e.data, e.created_at, w.id, w.account_id, w.url, w.secret
				FROM webhook_deliveries d JOIN events e ON e.id = d.event_id JOIN webhook_endpoints w ON w.id = d.endpoint_id
				WHERE d.id = ? AND w.deleted = 0`, id).
				Scan(&d.ID, &d.Attempts, &created, &d.Event.ID, &typ, &data, &evCreated, &d.Endpoint.ID, &d.Endpoint.Account, &url, &secret)
			if err != nil {
				// A deleted endpoint's deliveries end here.
				if _, err := tx.exec(ctx, `UPDATE webhook_deliveries SET final = 'endpoint_deleted' WHERE id = ?`, id); err != nil {
					return err
				}
				continue
			}
			d.Created, d.Event.Type, d.Event.Data, d.Event.Created = fromNanos(created), typ, json.RawMessage(data), fromNanos(evCreated)
			d.Endpoint.URL, d.Endpoint.Secrets = url, []string{secret}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// dueQuery is Due's search for the ids to claim: due, not final, oldest first, neither of a skipped
// endpoint nor of a skipped account's endpoint. An account's endpoints are read by
// webhook_endpoints_account, its handful of ids then excluded as the skipped endpoints are, while
// the deliveries are read by webhook_deliveries_due as without skips.
func dueQuery(q webhook.DueQuery, d sqldb.Dialect) (string, []any) {
	where, args := `final = '' AND next_at <= ?`, []any{nanos(q.Now)}
	if len(q.SkipEndpoints) > 0 {
		where += ` AND endpoint_id NOT IN (?` + strings.Repeat(",?", len(q.SkipEndpoints)-1) + `)`
		for _, e := range q.SkipEndpoints {
			args = append(args, e)
		}
	}
	if len(q.SkipAccounts) > 0 {
		where += ` AND endpoint_id NOT IN (SELECT id FROM webhook_endpoints WHERE account_id IN (?` +
			strings.Repeat(",?", len(q.SkipAccounts)-1) + `))`
		for _, a := range q.SkipAccounts {
			args = append(args, a)
		}
	}
	lock := ""
	if d == sqldb.Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	return `SELECT id FROM webhook_deliveries WHERE ` + where + ` ORDER BY next_at LIMIT ?` + lock, append(args, q.Limit)
}

// Record stores one attempt's result.
func (w webhookStore) Record(ctx context.Context, r webhook.Result) error {
	return w.s.InTx(ctx, func(tx *Tx) error {
		var err error
		switch r.Outcome {
		case webhook.Delivered, webhook.GaveUp:
			_, err = tx.exec(ctx, `UPDATE webhook_deliveries SET final = ?, attempts = ? WHERE id = ?`, r.Outcome.String(), r.Attempt, r.DeliveryID)
		case webhook.Failed:
			_, err = tx.exec(ctx, `UPDATE webhook_deliveries SET attempts = ?, next_at = ? WHERE id = ?`, r.Attempt, nanos(r.NextAttempt), r.DeliveryID)
		case webhook.Deferred:
			_, err = tx.exec(ctx, `UPDATE webhook_deliveries SET next_at = ? WHERE id = ?`, nanos(r.NextAttempt), r.DeliveryID)
			return err
		}
		if err != nil {
			return err
		}
		resp := r.Response
		if len(resp) > 256 {
			resp = resp[:256]
		}
		_, err = tx.exec(ctx, `INSERT INTO webhook_attempts (delivery_id, attempt, outcome, at, duration_ns, status_code, error, response)
			VALUES (?,?,?,?,?,?,?,?)`, r.DeliveryID, r.Attempt, r.Outcome.String(), nanos(r.At), int64(r.Duration), r.StatusCode, truncate(r.Error, 500), resp)
		return err
	})
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
