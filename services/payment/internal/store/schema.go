// Package store keeps the payment service's state in SQLite (default) or PostgreSQL: payments,
// attempts, refunds, payouts, idempotency records, the double-entry ledger, the event log and the
// outbox. Every state change and the ledger transaction, events and outbox rows it causes commit in
// one database transaction (Tx), so a crash leaves either all of them or none.
package store

import (
	"github.com/bourse-dev/bourse/pkg/sqldb"
	"github.com/bourse-dev/bourse/services/payment/internal/idempotency"
)

// migrations are applied in order, once. Times are Unix nanoseconds; amounts integer minor units.
func migrations(d sqldb.Dialect) []string {
	serial := "INTEGER PRIMARY KEY AUTOINCREMENT"
	if d == sqldb.Postgres {
		serial = "BIGSERIAL PRIMARY KEY"
	}
	return []string{
		`CREATE TABLE payments (
			id TEXT PRIMARY KEY, caller TEXT NOT NULL, account_id TEXT NOT NULL,
			amount BIGINT NOT NULL, currency TEXT NOT NULL, method TEXT NOT NULL, capture_method TEXT NOT NULL,
			status TEXT NOT NULL, captured BIGINT NOT NULL DEFAULT 0, refunded BIGINT NOT NULL DEFAULT 0,
			refund_reserved BIGINT NOT NULL DEFAULT 0, decline_reason TEXT NOT NULL DEFAULT '',
			decline_code TEXT NOT NULL DEFAULT '', fraud_score DOUBLE PRECISION NOT NULL DEFAULT 0,
			metadata TEXT NOT NULL DEFAULT '{}', risk_credited INTEGER NOT NULL DEFAULT 0,
			created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
			CHECK (refund_reserved <= captured), CHECK (refunded <= refund_reserved))`,
		`CREATE INDEX payments_account ON payments (account_id, created_at, id)`,
		`CREATE INDEX payments_created ON payments (created_at, id)`,
		`CREATE TABLE attempts (
			id TEXT PRIMARY KEY, payment_id TEXT NOT NULL REFERENCES payments (id), processor TEXT NOT NULL,
			status TEXT NOT NULL, pending_op TEXT NOT NULL DEFAULT '', processor_ref TEXT NOT NULL DEFAULT '',
			decline_code TEXT NOT NULL DEFAULT '', lookups INTEGER NOT NULL DEFAULT 0,
			next_lookup_at BIGINT NOT NULL DEFAULT 0, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)`,
		`CREATE INDEX attempts_payment ON attempts (payment_id, created_at)`,
		`CREATE INDEX attempts_due ON attempts (pending_op, next_lookup_at)`,
		`CREATE TABLE refunds (
			id TEXT PRIMARY KEY, caller TEXT NOT NULL, payment_id TEXT NOT NULL REFERENCES payments (id),
			account_id TEXT NOT NULL, processor TEXT NOT NULL, attempt_id TEXT NOT NULL,
			amount BIGINT NOT NULL, currency TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '',
			processor_ref TEXT NOT NULL DEFAULT '', decline_code TEXT NOT NULL DEFAULT '',
			lookups INTEGER NOT NULL DEFAULT 0, next_step_at BIGINT NOT NULL DEFAULT 0,
			created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)`,
		`CREATE INDEX refunds_payment ON refunds (payment_id)`,
		`CREATE INDEX refunds_due ON refunds (status, next_step_at)`,
		`CREATE TABLE payouts (
			id TEXT PRIMARY KEY, caller TEXT NOT NULL, account_id TEXT NOT NULL,
			amount BIGINT NOT NULL, currency TEXT NOT NULL, destination TEXT NOT NULL,
			processor TEXT NOT NULL DEFAULT '', status TEXT NOT NULL, processor_ref TEXT NOT NULL DEFAULT '',
			decline_reason TEXT NOT NULL DEFAULT '', decline_code TEXT NOT NULL DEFAULT '',
			metadata TEXT NOT NULL DEFAULT '{}', lookups INTEGER NOT NULL DEFAULT 0,
			next_step_at BIGINT NOT NULL DEFAULT 0, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)`,
		`CREATE INDEX payouts_due ON payouts (status, next_step_at)`,
		`CREATE TABLE idempotency (
			caller TEXT NOT NULL, idem_key TEXT NOT NULL, method TEXT NOT NULL, fingerprint TEXT NOT NULL,
			state TEXT NOT NULL, object_id TEXT NOT NULL DEFAULT '', response TEXT NOT NULL DEFAULT '',
			err_kind INTEGER NOT NULL DEFAULT 0, err_msg TEXT NOT NULL DEFAULT '', created_at BIGINT NOT NULL,
			PRIMARY KEY (caller, idem_key))`,
		`CREATE INDEX idempotency_object ON idempotency (object_id)`,
		`CREATE INDEX idempotency_created ON idempotency (created_at)`,
		`CREATE TABLE ledger_transactions (
			id ` + serial + `, kind TEXT NOT NULL, ref TEXT NOT NULL, created_at BIGINT NOT NULL,
			UNIQUE (kind, ref))`,
		`CREATE TABLE ledger_entries (
			tx_id BIGINT NOT NULL REFERENCES ledger_transactions (id), account TEXT NOT NULL,
			currency TEXT NOT NULL, amount BIGINT NOT NULL)`,
		`CREATE INDEX ledger_entries_tx ON ledger_entries (tx_id)`,
		`CREATE INDEX ledger_entries_account ON ledger_entries (account, currency)`,
		`CREATE TABLE events (
			seq ` + serial + `, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, account_id TEXT NOT NULL,
			object_id TEXT NOT NULL, data TEXT NOT NULL, created_at BIGINT NOT NULL)`,
		`CREATE INDEX events_account ON events (account_id, seq)`,
		`CREATE TABLE outbox (
			id ` + serial + `, kind TEXT NOT NULL, ref TEXT NOT NULL, payload TEXT NOT NULL,
			tries INTEGER NOT NULL DEFAULT 0, next_at BIGINT NOT NULL, last_error TEXT NOT NULL DEFAULT '',
			created_at BIGINT NOT NULL, UNIQUE (kind, ref))`,
		`CREATE INDEX outbox_due ON outbox (next_at)`,
		`CREATE TABLE webhook_endpoints (
			id TEXT PRIMARY KEY, caller TEXT NOT NULL, account_id TEXT NOT NULL, url TEXT NOT NULL,
			event_types TEXT NOT NULL DEFAULT '[]', secret TEXT NOT NULL, created_at BIGINT NOT NULL,
			deleted INTEGER NOT NULL DEFAULT 0)`,
		`CREATE INDEX webhook_endpoints_account ON webhook_endpoints (account_id)`,
		// One row per (event, endpoint), written with the event; the dispatcher claims due ones.
		`CREATE TABLE webhook_deliveries (
			id TEXT PRIMARY KEY, event_id TEXT NOT NULL, endpoint_id TEXT NOT NULL,
			attempts INTEGER NOT NULL DEFAULT 0, next_at BIGINT NOT NULL, final TEXT NOT NULL DEFAULT '',
			created_at BIGINT NOT NULL)`,
		`CREATE INDEX webhook_deliveries_due ON webhook_deliveries (final, next_at)`,
		`CREATE TABLE webhook_attempts (
			delivery_id TEXT NOT NULL, attempt INTEGER NOT NULL, outcome TEXT NOT NULL, at BIGINT NOT NULL,
			duration_ns BIGINT NOT NULL, status_code INTEGER NOT NULL, error TEXT NOT NULL, response TEXT NOT NULL)`,
		`CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id)`,
		// PostgreSQL commits concurrent transactions out of sequence order: each event records its
		// inserting transaction (AddEvent writes the larger of it and the highest xid already in the
		// log), and ListEvents pages in (xid, seq) order over the transactions the reader's snapshot
		// knows have all ended. SQLite has one writer at a time, so its sequence order is its commit
		// order.
		pgOnly(d, `ALTER TABLE events ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id()`),
		pgOnly(d, `CREATE INDEX events_xid ON events (xid, seq)`),
		pgOnly(d, `CREATE INDEX events_account_xid ON events (account_id, xid, seq)`),
		// The janitor's search for uncaptured authorizations past the capture window.
		`CREATE INDEX payments_status_created ON payments (status, created_at)`,
		// The janitor's search for records of requests that died (StaleKeys): the in-flight ones
		// only, where a scan of idempotency_created would read every finished record in retention
		// first (0.4 s a pass at a million).
		`CREATE INDEX idempotency_in_flight ON idempotency (created_at, caller, idem_key) WHERE state = '` + string(idempotency.InFlight) + `'`,
		// The janitor's due attempts (DueAttempts) from an index of the open ones only: attempts_due
		// could not serve "pending_op <> ''", so every pass scanned every attempt ever made, and it
		// cost every attempt's writes an entry kept for ever.
		`DROP INDEX attempts_due`,
		`CREATE INDEX attempts_open ON attempts (next_lookup_at) WHERE pending_op <> ''`,
		// Balances maintained with the entries (balances.go), so that reading one, and the check at
		// start, cost the accounts rather than the ledger. Filled from the entries of a database
		// written by an earlier release (which must not write while this runs).
		`CREATE TABLE ledger_balances (
			account TEXT NOT NULL, currency TEXT NOT NULL, shard INTEGER NOT NULL, balance BIGINT NOT NULL,
			PRIMARY KEY (account, currency, shard))` + sqliteOnly(d, ` WITHOUT ROWID`),
		`INSERT INTO ledger_balances (account, currency, shard, balance)
			SELECT account, currency, 0, SUM(amount) FROM ledger_entries GROUP BY account, currency`,
	}
}

// sqliteOnly is text that only SQLite's statement has.
func sqliteOnly(d sqldb.Dialect, text string) string {
	if d == sqldb.SQLite {
		return text
	}
	return ""
}

// pgOnly is a PostgreSQL migration that is a no-op on SQLite, so both dialects' lists keep the
// same length and numbering.
func pgOnly(d sqldb.Dialect, stmt string) string {
	if d == sqldb.Postgres {
		return stmt
	}
	return `SELECT 1`
}
