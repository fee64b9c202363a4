package store

import (
	"context"
	"strings"
	"testing"

	"github.com/bourse-dev/bourse/pkg/sqldb"
)

// balancesMigrations is how many migrations the release before the maintained balances had.
const balancesMigrations = 35

// A database of the release before the maintained balances, with a ledger, opens with each
// account's balance the sum of its entries (an account back at zero listed at zero), passes the
// full audit, and postings after the upgrade add to those balances. On SQLite and PostgreSQL.
func TestUpgradeFillsTheBalances(t *testing.T) {
	forEachDialect(t, func(t *testing.T, url string) {
		ctx := context.Background()
		all := writeEarlierRelease(t, url, balancesMigrations, func(d sqldb.Dialect) []string {
			stmts := []string{
				`INSERT INTO ledger_transactions (id, kind, ref, created_at) VALUES (1, 'payment.captured', 'pay_1', 1),
					(2, 'payment.captured', 'pay_2', 2), (3, 'refund.debited', 're_1', 3), (4, 'test', 'eur', 4)`,
				`INSERT INTO ledger_entries (tx_id, account, currency, amount) VALUES
					(1, 'processor_receivable:acquirer', 'USD', 100), (1, 'customer_funds:alice', 'USD', -100),
					(2, 'processor_receivable:acquirer', 'USD', 40), (2, 'customer_funds:bob', 'USD', -40),
					(3, 'customer_funds:alice', 'USD', 100), (3, 'refunds', 'USD', -100),
					(4, 'fees', 'EUR', 5), (4, 'customer_funds:bob', 'EUR', -5)`,
			}
			if d == sqldb.Postgres {
				stmts = append(stmts, `SELECT setval('ledger_transactions_id_seq', 4)`)
			}
			return stmts
		})

		s, err := Open(ctx, url)
		if err != nil {
			t.Fatalf("opening the earlier release's database: %v", err)
		}
		defer s.Close()
		want := map[accountCurrency]int64{
			{"processor_receivable:acquirer", "USD"}: 140, {"customer_funds:alice", "USD"}: 0, {"customer_funds:bob", "USD"}: -40,
			{"refunds", "USD"}: -100, {"fees", "EUR"}: 5, {"customer_funds:bob", "EUR"}: -5,
		}
		if got := keptBalances(t, s); !mapsEqual(got, want) {
			t.Fatalf("balances after the upgrade %v, want %v", got, want)
		}
		wantBalancesOfEntries(t, s)
		if err := post(ctx, s, "test", "after", e("refunds", "USD", 100), e("customer_funds:alice", "USD", -100)); err != nil {
			t.Fatal(err)
		}
		want[accountCurrency{"refunds", "USD"}] += 100
		want[accountCurrency{"customer_funds:alice", "USD"}] -= 100
		if got := keptBalances(t, s); !mapsEqual(got, want) {
			t.Fatalf("balances after a posting on the upgraded database %v, want %v", got, want)
		}
		if err := s.CheckInvariants(ctx); err != nil {
			t.Fatal(err)
		}
		wantSchemaVersion(t, s, all)
	})
}

// Open refuses a database whose maintained balances do not sum to zero in a currency, and one whose
// latest transaction does not balance; both are found without reading the whole ledger.
func TestOpenRefusesAnUnbalancedLedger(t *testing.T) {
	forEachDialect(t, func(t *testing.T, url string) {
		ctx := context.Background()
		s, err := Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		for _, ref := range []string{"a", "b"} {
			if err := post(ctx, s, "test", ref, e("refunds", "USD", 10), e("customer_funds:alice", "USD", -10)); err != nil {
				t.Fatal(err)
			}
		}
		db := s.db
		const oneShard = `AND shard = (SELECT MIN(shard) FROM ledger_balances WHERE account = 'customer_funds:alice')`
		for _, tc := range []struct{ name, breakIt, fixIt, want string }{
			{"balances off", `UPDATE ledger_balances SET balance = balance + 1 WHERE account = 'customer_funds:alice' ` + oneShard,
				`UPDATE ledger_balances SET balance = balance - 1 WHERE account = 'customer_funds:alice' ` + oneShard,
				"the balances of USD sum to 1"},
			{"latest transaction off", `UPDATE ledger_entries SET amount = 11 WHERE amount = 10 AND tx_id = (SELECT MAX(id) FROM ledger_transactions)`,
				`UPDATE ledger_entries SET amount = 10 WHERE amount = 11`, "is off by 1 USD"},
		} {
			if _, err := db.ExecContext(ctx, tc.breakIt); err != nil {
				t.Fatal(err)
			}
			if reopened, err := Open(ctx, url); err == nil || !strings.Contains(err.Error(), tc.want) {
				if err == nil {
					reopened.Close()
				}
				t.Fatalf("%s: Open answered %v, want an error with %q", tc.name, err, tc.want)
			}
			if _, err := db.ExecContext(ctx, tc.fixIt); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
		s, err = Open(ctx, url)
		if err != nil {
			t.Fatalf("Open once repaired: %v", err)
		}
		s.Close()
	})
}
