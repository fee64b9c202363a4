package store

import (
	"context"
	"strings"

	"github.com/bourse-dev/bourse/pkg/sqldb"
	"github.com/bourse-dev/bourse/services/payment/internal/ledger"
)

// Post appends a balanced ledger transaction. A transaction of the same kind and reference is
// refused by the unique key, so a state change replayed by two replicas cannot post twice (the CAS
// on the state change already prevents it; this is the ledger's own guard).
//
// It is one statement on PostgreSQL (the entries insert takes the transaction's id from the
// insert's RETURNING in a CTE) and two on SQLite, which has no data-modifying CTEs: every statement
// is a round trip on PostgreSQL and a step of the single writer on SQLite.
func (t *Tx) Post(ctx context.Context, lt ledger.Transaction) error {
	if err := lt.Validate(); err != nil {
		return err
	}
	args := make([]any, 0, 3+4*len(lt.Entries))
	if t.s.db.Dialect == sqldb.Postgres {
		args = append(args, lt.Kind, lt.Ref, nanos(t.now))
		for _, e := range lt.Entries {
			args = append(args, e.Account, e.Currency, e.Amount)
		}
		_, err := t.exec(ctx, postSQL(len(lt.Entries)), args...)
		return err
	}
	var id int64
	if err := t.queryRow(ctx, `INSERT INTO ledger_transactions (kind, ref, created_at) VALUES (?,?,?) RETURNING id`,
		lt.Kind, lt.Ref, nanos(t.now)).Scan(&id); err != nil {
		return err
	}
	for _, e := range lt.Entries {
		args = append(args, id, e.Account, e.Currency, e.Amount)
	}
	_, err := t.exec(ctx, entriesSQL(len(lt.Entries)), args...)
	return err
}

// The statements' text for the common numbers of entries is built once (it is also the prepared
// statements' key).
var (
	entriesSQLs = make([]string, 5)
	postSQLs    = make([]string, 5)
)

func init() {
	for n := 1; n < len(entriesSQLs); n++ {
		entriesSQLs[n], postSQLs[n] = buildEntriesSQL(n), buildPostSQL(n)
	}
}

func entriesSQL(n int) string {
	if n < len(entriesSQLs) {
		return entriesSQLs[n]
	}
	return buildEntriesSQL(n)
}

func postSQL(n int) string {
	if n < len(postSQLs) {
		return postSQLs[n]
	}
	return buildPostSQL(n)
}

// buildEntriesSQL inserts n entries of one transaction (SQLite).
func buildEntriesSQL(n int) string {
	return `INSERT INTO ledger_entries (tx_id, account, currency, amount) VALUES (?,?,?,?)` + strings.Repeat(`,(?,?,?,?)`, n-1)
}

// buildPostSQL inserts a transaction and its n entries (PostgreSQL).
func buildPostSQL(n int) string {
	return `WITH t AS (INSERT INTO ledger_transactions (kind, ref, created_at) VALUES (?,?,?) RETURNING id)
		INSERT INTO ledger_entries (tx_id, account, currency, amount) SELECT t.id, v.account, v.currency, v.amount
		FROM t, (VALUES (?::text,?::text,?::bigint)` + strings.Repeat(`,(?,?,?)`, n-1) + `) AS v (account, currency, amount)`
}

// Balances derives the balance of every ledger account (optionally one account or currency).
func (s *Store) Balances(ctx context.Context, account, currency string) ([]ledger.Balance, error) {
	var where []string
	var args []any
	if account != "" {
		where, args = append(where, "account = ?"), append(args, account)
	}
	if currency != "" {
		where, args = append(where, "currency = ?"), append(args, currency)
	}
	q := `SELECT account, currency, SUM(amount) FROM ledger_entries`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := s.query(ctx, q+` GROUP BY account, currency ORDER BY account, currency`, args...)
	return collect(rows, err, func(r scanner) (b ledger.Balance, err error) {
		err = r.Scan(&b.Account, &b.Currency, &b.Amount)
		return b, err
	})
}

// LedgerTx is a stored ledger transaction.
type LedgerTx struct {
	ID        int64
	Kind      string
	Ref       string
	CreatedAt int64
	Entries   []ledger.Entry
}

// LedgerTransactions pages through transactions with ids above after (optionally about one reference).
func (s *Store) LedgerTransactions(ctx context.Context, ref string, after int64, limit int) ([]LedgerTx, error) {
	q, args := `SELECT id, kind, ref, created_at FROM ledger_transactions WHERE id > ?`, []any{after}
	if ref != "" {
		q, args = q+` AND ref = ?`, append(args, ref)
	}
	rows, err := s.query(ctx, q+` ORDER BY id LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, err
	}
	var out []LedgerTx
	for rows.Next() {
		var lt LedgerTx
		if err := rows.Scan(&lt.ID, &lt.Kind, &lt.Ref, &lt.CreatedAt); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, lt)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		er, err := s.query(ctx, `SELECT account, currency, amount FROM ledger_entries WHERE tx_id = ?`, out[i].ID)
		if err != nil {
			return nil, err
		}
		for er.Next() {
			var e ledger.Entry
			if err := er.Scan(&e.Account, &e.Currency, &e.Amount); err != nil {
				er.Close()
				return nil, err
			}
			out[i].Entries = append(out[i].Entries, e)
		}
		er.Close()
	}
	return out, nil
}
