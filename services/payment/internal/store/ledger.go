package store

import (
	"context"
	"strings"

	"github.com/bourse-dev/bourse/pkg/sqldb"
	"github.com/bourse-dev/bourse/services/payment/internal/ledger"
)

// Post appends a balanced ledger transaction and adds its entries to the maintained balances
// (balances.go). A transaction of the same kind and reference is refused by the unique key, so a
// state change replayed by two replicas cannot post twice (the CAS on the state change already
// prevents it; this is the ledger's own guard).
//
// It is one statement on PostgreSQL (the entries insert takes the transaction's id from the
// insert's RETURNING in a CTE, and the balances' upsert is the statement's own) and three on
// SQLite, which has no data-modifying CTEs: every statement is a round trip on PostgreSQL and a
// step of the single writer on SQLite.
func (t *Tx) Post(ctx context.Context, lt ledger.Transaction) error {
	if err := lt.Validate(); err != nil {
		return err
	}
	deltas := balanceDeltas{}
	deltas.add(lt.Entries...)
	balances := deltas.args(t.s.pickShard())
	if t.s.db.Dialect == sqldb.Postgres {
		args := make([]any, 0, 3+3*len(lt.Entries)+len(balances.vals))
		args = append(args, lt.Kind, lt.Ref, nanos(t.now))
		for _, e := range lt.Entries {
			args = append(args, e.Account, e.Currency, e.Amount)
		}
		_, err := t.exec(ctx, postSQL(len(lt.Entries), balances.rows()), append(args, balances.vals...)...)
		return err
	}
	var id int64
	if err := t.queryRow(ctx, `INSERT INTO ledger_transactions (kind, ref, created_at) VALUES (?,?,?) RETURNING id`,
		lt.Kind, lt.Ref, nanos(t.now)).Scan(&id); err != nil {
		return err
	}
	args := make([]any, 0, 4*len(lt.Entries))
	for _, e := range lt.Entries {
		args = append(args, id, e.Account, e.Currency, e.Amount)
	}
	if _, err := t.exec(ctx, entriesSQL(len(lt.Entries)), args...); err != nil {
		return err
	}
	return balances.each(func(q string, args []any) error {
		_, err := t.exec(ctx, q, args...)
		return err
	})
}

// The statements' text for the common numbers of entries (and of the accounts they move) is built
// once (it is also the prepared statements' key).
var (
	entriesSQLs = make([]string, 5)
	postSQLs    = make([][]string, 5) // by entries, then accounts
)

func init() {
	for n := 1; n < len(entriesSQLs); n++ {
		entriesSQLs[n] = buildEntriesSQL(n)
		postSQLs[n] = make([]string, n+1)
		for m := 1; m <= n; m++ {
			postSQLs[n][m] = buildPostSQL(n, m)
		}
	}
}

func entriesSQL(n int) string {
	if n < len(entriesSQLs) {
		return entriesSQLs[n]
	}
	return buildEntriesSQL(n)
}

func postSQL(n, m int) string {
	if n < len(postSQLs) && m <= n {
		return postSQLs[n][m]
	}
	return buildPostSQL(n, m)
}

// buildEntriesSQL inserts n entries of one transaction (SQLite).
func buildEntriesSQL(n int) string {
	return `INSERT INTO ledger_entries (tx_id, account, currency, amount) VALUES (?,?,?,?)` + strings.Repeat(`,(?,?,?,?)`, n-1)
}

// buildPostSQL inserts a transaction and its n entries, and adds them to the balances of the m
// (account, currency) they move, rows as upsertBalances takes them (PostgreSQL).
func buildPostSQL(n, m int) string {
	return `WITH t AS (INSERT INTO ledger_transactions (kind, ref, created_at) VALUES (?,?,?) RETURNING id),
		e AS (INSERT INTO ledger_entries (tx_id, account, currency, amount) SELECT t.id, v.account, v.currency, v.amount
		FROM t, (VALUES (?::text,?::text,?::bigint)` + strings.Repeat(`,(?,?,?)`, n-1) + `) AS v (account, currency, amount))
		INSERT INTO ledger_balances (account, currency, shard, balance) VALUES (?::text,?::text,?::integer,?::bigint)` + strings.Repeat(`,(?,?,?,?)`, m-1) + `
		ON CONFLICT (account, currency, shard) DO UPDATE SET balance = ledger_balances.balance + excluded.balance`
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
		rows, err := s.query(ctx, `SELECT account, currency, amount FROM ledger_entries WHERE tx_id = ?`, out[i].ID)
		// collect reads rows.Err too: a read cut short fails, never answers a transaction's entries in part.
		if out[i].Entries, err = collect(rows, err, func(r scanner) (e ledger.Entry, err error) {
			err = r.Scan(&e.Account, &e.Currency, &e.Amount)
			return e, err
		}); err != nil {
			return nil, err
		}
	}
	return out, nil
}
