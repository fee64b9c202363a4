package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/bourse-dev/bourse/pkg/sqldb"
	"github.com/bourse-dev/bourse/services/payment/internal/ledger"
)

// Maintained balances: ledger_balances holds each (account, currency)'s balance, updated in the
// transaction that inserts its entries (Tx.Post, the lanes' verdicts), so reading a balance costs
// the accounts, not the ledger, which grows by thousands of entries a second.
//
// Every deposit moves its processor's clearing account. On PostgreSQL a row updated by one
// transaction is locked until that commits, so two lanes or two replicas updating one row would
// take turns for the whole of each other's transaction: an account's balance is spread over
// balanceShards rows (a lane batch adds to one, a general transaction to a random one) and reads
// sum them. Trading accounts too: one account's concurrent deposits through the general path
// otherwise queue on its row (BenchmarkDepositWrites/postgres/general, all of one account, took
// twice as long), and an account has rows only in the shards it was moved in. SQLite has one
// writer, so one shard.
//
// Deadlocks: each writer of ledger_entries adds to its balances in one statement (a lane batch past
// maxSetRows accounts: consecutive ones), its rows in one order, (account, currency) ascending, so
// two transactions never wait for each other's balance rows in a cycle. A transaction that posts
// twice adds twice, each in order but not the two together; the service's transactions post at
// most once.

// pgBalanceShards is the number of rows an account's balance is spread over on PostgreSQL.
const pgBalanceShards = 8

// balanceShards is the number of shard rows an account's balance may have.
func (s *Store) balanceShards() int {
	if s.db.Dialect == sqldb.Postgres {
		return pgBalanceShards
	}
	return 1
}

// pickShard is the shard a transaction or lane batch adds to.
func (s *Store) pickShard() int { return rand.IntN(s.balanceShards()) }

type accountCurrency struct{ account, currency string }

// balanceDeltas sums entries per (account, currency).
type balanceDeltas map[accountCurrency]int64

func (d balanceDeltas) add(entries ...ledger.Entry) {
	for _, e := range entries {
		d[accountCurrency{e.Account, e.Currency}] += e.Amount
	}
}

// args is the deltas as rows of upsertBalances for shard, in the one order every writer adds in.
func (d balanceDeltas) args(shard int) *setArgs {
	keys := slices.SortedFunc(maps.Keys(d), func(a, b accountCurrency) int {
		return cmp.Or(strings.Compare(a.account, b.account), strings.Compare(a.currency, b.currency))
	})
	a := upsertBalances.args(len(keys))
	for _, k := range keys {
		a.add(k.account, k.currency, shard, d[k])
	}
	return a
}

// upsertBalances adds deltas to balances, creating the rows it lacks. A delta that sums to zero is
// still written: an account that has entries is listed, at zero, as it was when balances were
// derived from the entries.
var upsertBalances = newSetStmt([]col{{"account", "TEXT"}, {"currency", "TEXT"}, {"shard", "INTEGER"}, {"delta", "BIGINT"}},
	// "WHERE": SQLite reads "SELECT ... FROM v ON CONFLICT" as a join's ON without one.
	`INSERT INTO ledger_balances (account, currency, shard, balance) SELECT account, currency, shard, delta FROM v
	WHERE account IS NOT NULL
	ON CONFLICT (account, currency, shard) DO UPDATE SET balance = ledger_balances.balance + excluded.balance`)

// balancesQuery reads the maintained balances, every shard summed, in (account, currency) order.
func balancesQuery(account, currency string) (string, []any) {
	var where []string
	var args []any
	if account != "" {
		where, args = append(where, "account = ?"), append(args, account)
	}
	if currency != "" {
		where, args = append(where, "currency = ?"), append(args, currency)
	}
	q := `SELECT account, currency, SUM(balance) FROM ledger_balances`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	return q + ` GROUP BY account, currency ORDER BY account, currency`, args
}

// Balances is the balance of every ledger account (optionally one account or currency), from the
// maintained balances: as many rows read as the accounts have shards, whatever the ledger's size.
func (s *Store) Balances(ctx context.Context, account, currency string) ([]ledger.Balance, error) {
	q, args := balancesQuery(account, currency)
	rows, err := s.query(ctx, q, args...)
	return collect(rows, err, func(r scanner) (b ledger.Balance, err error) {
		err = r.Scan(&b.Account, &b.Currency, &b.Amount)
		return b, err
	})
}

// derivedBalances sums the entries per (account, currency): the whole ledger (the full audit only).
func (s *Store) derivedBalances(ctx context.Context) ([]ledger.Balance, error) {
	rows, err := s.query(ctx, `SELECT account, currency, SUM(amount) FROM ledger_entries GROUP BY account, currency`)
	return collect(rows, err, func(r scanner) (b ledger.Balance, err error) {
		err = r.Scan(&b.Account, &b.Currency, &b.Amount)
		return b, err
	})
}

// checkMaintainedBalances is the full audit's comparison of the maintained balances with the sums
// of the entries, account by account.
func (s *Store) checkMaintainedBalances(ctx context.Context, derived []ledger.Balance) error {
	maintained, err := s.Balances(ctx, "", "")
	if err != nil {
		return err
	}
	kept := make(map[accountCurrency]int64, len(maintained))
	for _, b := range maintained {
		kept[accountCurrency{b.Account, b.Currency}] = b.Amount
	}
	for _, b := range derived {
		k := accountCurrency{b.Account, b.Currency}
		got, ok := kept[k]
		if !ok || got != b.Amount {
			return fmt.Errorf("ledger invariant: the balance kept for %s %s is %d (kept: %v), its entries sum to %d", b.Account, b.Currency, got, ok, b.Amount)
		}
		delete(kept, k)
	}
	for k, v := range kept {
		return fmt.Errorf("ledger invariant: a balance of %d is kept for %s %s, which has no entries", v, k.account, k.currency)
	}
	return nil
}

// recentTxs is how many of the latest ledger transactions Open checks entry by entry (and of the
// latest payments).
const recentTxs = 10000

// The ids of the latest recentTxs transactions: a walk down the primary key.
var openRecentQuery = fmt.Sprintf(`SELECT COALESCE(MIN(id), 0), COALESCE(MAX(id), 0) FROM (SELECT id FROM ledger_transactions ORDER BY id DESC LIMIT %d) r`, recentTxs)

// Open's bounded checks: each reads an index range or the maintained balances, never a table
// that grows with the ledger or the payments (TestOpenChecksReadNoLedgerScan).
const (
	// The maintained balances sum to zero per currency: O(accounts).
	openBalancesQuery = `SELECT currency, SUM(balance) FROM ledger_balances GROUP BY currency HAVING SUM(balance) <> 0`
	// Each of those transactions balances: their entries by ledger_entries_tx. The range has both
	// ends so that a generic plan, which cannot know how wide it is, still estimates it narrow.
	openTxsQuery = `SELECT tx_id, currency, SUM(amount) FROM ledger_entries WHERE tx_id >= ? AND tx_id <= ?
		GROUP BY tx_id, currency HAVING SUM(amount) <> 0`
	// None of those is a capture of a payment that did not succeed: each payment by its key. The
	// kind is compared as an expression ("|| ''") so that no engine reads it from the (kind, ref)
	// index, which would walk every capture ever posted (SQLite, without statistics, prefers an
	// equality to a range).
	openCapturesQuery = `SELECT COUNT(*) FROM ledger_transactions t JOIN payments p ON p.id = t.ref
		WHERE t.id >= ? AND t.id <= ? AND t.kind || '' = 'payment.captured' AND p.status NOT IN ('succeeded', 'partially_refunded', 'refunded')`
)

// The latest payments captured no more than their amount and refunded no more than they captured
// (which the table's CHECKs also hold), by payments_created.
var openPaymentsQuery = fmt.Sprintf(`SELECT COUNT(*) FROM (SELECT amount, captured, refunded FROM payments ORDER BY created_at DESC, id DESC LIMIT %d) p
	WHERE refunded > captured OR captured > amount`, recentTxs)

// checkOnOpen is what Open checks before serving: bounded by the accounts and recentTxs, not by the
// ledger (CheckInvariants, the full audit, is the tests' and an operator's).
func (s *Store) checkOnOpen(ctx context.Context) error {
	rows, err := s.query(ctx, openBalancesQuery)
	if err != nil {
		return err
	}
	off, err := collect(rows, err, func(r scanner) (b ledger.Balance, err error) {
		err = r.Scan(&b.Currency, &b.Amount)
		return b, err
	})
	if err != nil {
		return err
	}
	if len(off) > 0 {
		return fmt.Errorf("ledger invariant: the balances of %s sum to %d, not 0", off[0].Currency, off[0].Amount)
	}
	var lo, hi int64
	if err := s.queryRow(ctx, openRecentQuery).Scan(&lo, &hi); err != nil {
		return err
	}
	var id, sum int64
	var cur string
	switch err := s.queryRow(ctx, openTxsQuery, lo, hi).Scan(&id, &cur, &sum); {
	case err == nil:
		return fmt.Errorf("ledger invariant: transaction %d is off by %d %s", id, sum, cur)
	case !errors.Is(err, sql.ErrNoRows):
		return err
	}
	var bad int
	if err := s.queryRow(ctx, openCapturesQuery, lo, hi).Scan(&bad); err != nil {
		return err
	}
	if bad > 0 {
		return fmt.Errorf("payment invariant: %d payments have a capture posted but did not succeed", bad)
	}
	if err := s.queryRow(ctx, openPaymentsQuery).Scan(&bad); err != nil {
		return err
	}
	if bad > 0 {
		return fmt.Errorf("payment invariant: %d payments refunded more than captured or captured more than authorized", bad)
	}
	return nil
}
