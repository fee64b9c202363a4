package store

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// planQuery is a statement Open or Balances runs, with arguments for its plan.
type planQuery struct {
	name  string
	query string
	args  []any
	// want are steps the plan must have (regular expressions, one per line), scans the scans it may
	// have (of ledger_balances, of a subquery's rows, and the ones a LIMIT ends).
	want, scans []string
}

// openAndBalancesQueries are the statements Open's check and Balances run.
func openAndBalancesQueries() []planQuery {
	qs := []planQuery{
		{name: "maintained balances per currency", query: openBalancesQuery, scans: []string{`ledger_balances`}},
		{name: "latest transactions", query: openRecentQuery, scans: []string{`ledger_transactions`, `r`}},
		{name: "latest transactions balance", query: openTxsQuery, args: []any{1000, 2000},
			want: []string{`^SEARCH ledger_entries USING (COVERING )?INDEX ledger_entries_tx \(tx_id>\? AND tx_id<\?\)$`}},
		{name: "latest captures", query: openCapturesQuery, args: []any{1000, 2000},
			want: []string{`^SEARCH t USING INTEGER PRIMARY KEY \(rowid>\? AND rowid<\?\)$`, `^SEARCH p USING INDEX sqlite_autoindex_payments_1 \(id=\?\)$`}},
		{name: "latest payments", query: openPaymentsQuery, scans: []string{`payments USING INDEX payments_created`, `p`}},
	}
	for _, f := range [][2]string{{"", ""}, {"processor_receivable:acquirer", ""}, {"", "USD"}, {"processor_receivable:acquirer", "USD"}} {
		q, args := balancesQuery(f[0], f[1])
		pq := planQuery{name: fmt.Sprintf("Balances(%q, %q)", f[0], f[1]), query: q, args: args}
		if f[0] == "" {
			pq.scans = []string{`ledger_balances`}
		} else {
			pq.want = []string{`^SEARCH ledger_balances USING PRIMARY KEY \(account=\?`}
		}
		qs = append(qs, pq)
	}
	return qs
}

// What Open checks and what Balances reads cost the accounts and recentTxs, not the ledger: on a
// ledger of thousands of transactions, SQLite's plans read ledger_entries only by its transaction
// index, over a range of ids, and every other table by a key, or by an index in order up to a
// LIMIT; none sorts for an ORDER BY. (Not timed: the plans are what grows with the ledger.)
func TestOpenChecksReadNoLedgerScan(t *testing.T) {
	s := openStore(t, sqliteURL(t), Options{})
	fillLedger(t, s, 5000)
	for _, q := range openAndBalancesQueries() {
		steps := sqlitePlan(t, s, q.query, q.args...)
		text := strings.Join(steps, "\n")
		for _, w := range q.want {
			if !regexp.MustCompile(`(?m)` + w).MatchString(text) {
				t.Errorf("%s: plan\n%s\nhas no step %s", q.name, text, w)
			}
		}
		for _, step := range steps {
			if strings.Contains(step, "FOR ORDER BY") {
				t.Errorf("%s: plan\n%s\nsorts", q.name, text)
			}
			scan, ok := strings.CutPrefix(step, "SCAN ")
			if !ok {
				continue
			}
			allowed := false
			for _, a := range q.scans {
				allowed = allowed || scan == a
			}
			if !allowed {
				t.Errorf("%s: plan\n%s\nscans %s", q.name, text, scan)
			}
		}
		if strings.HasPrefix(q.name, "Balances") && strings.Contains(text, "ledger_entries") {
			t.Errorf("%s reads ledger_entries:\n%s", q.name, text)
		}
	}
}

// fillLedger posts n captures of n payments (succeeded) in a few statements, as the store would
// have: entries, balances and payments.
func fillLedger(t *testing.T, s *Store, n int) {
	t.Helper()
	ctx := context.Background()
	seq := fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d) `, n)
	for _, q := range []string{
		seq + `INSERT INTO payments (` + paymentCols + `) SELECT 'pay_fill_' || i, 'account:fill', 'fill_' || (i % 50), 100, 'USD', 'card',
			'automatic', 'succeeded', 100, 0, 0, '', '', 0, '{}', 1, i, i FROM n`,
		seq + `INSERT INTO ledger_transactions (kind, ref, created_at) SELECT 'payment.captured', 'pay_fill_' || i, i FROM n`,
		`INSERT INTO ledger_entries (tx_id, account, currency, amount) SELECT id, 'processor_receivable:acquirer', 'USD', 100 FROM ledger_transactions`,
		`INSERT INTO ledger_entries (tx_id, account, currency, amount)
			SELECT t.id, 'customer_funds:' || p.account_id, 'USD', -100 FROM ledger_transactions t JOIN payments p ON p.id = t.ref`,
		`INSERT INTO ledger_balances (account, currency, shard, balance) SELECT account, currency, 0, SUM(amount) FROM ledger_entries GROUP BY account, currency`,
	} {
		if _, err := s.db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := s.CheckInvariants(ctx); err != nil {
		t.Fatalf("the filled ledger: %v", err)
	}
}
