package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bourse-dev/bourse/pkg/sqldb"
	"github.com/bourse-dev/bourse/pkg/testenv"
	"github.com/bourse-dev/bourse/services/payment/internal/ledger"
)

// keptBalances reads ledger_balances itself, its shards summed, by (account, currency).
func keptBalances(t *testing.T, s *Store) map[accountCurrency]int64 {
	t.Helper()
	return sumByAccount(t, s, `SELECT account, currency, balance FROM ledger_balances`)
}

// entrySums sums ledger_entries by (account, currency).
func entrySums(t *testing.T, s *Store) map[accountCurrency]int64 {
	t.Helper()
	return sumByAccount(t, s, `SELECT account, currency, amount FROM ledger_entries`)
}

// sumByAccount sums the amounts of query's rows (account, currency, amount) by (account, currency).
func sumByAccount(t *testing.T, s *Store, query string) map[accountCurrency]int64 {
	t.Helper()
	rows, err := s.db.QueryContext(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[accountCurrency]int64{}
	for rows.Next() {
		var k accountCurrency
		var a int64
		if err := rows.Scan(&k.account, &k.currency, &a); err != nil {
			t.Fatal(err)
		}
		out[k] += a
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// wantBalancesOfEntries fails unless the maintained rows and Balances (in its order) are the sums
// of the entries, every account that has entries listed.
func wantBalancesOfEntries(t *testing.T, s *Store) {
	t.Helper()
	want := entrySums(t, s)
	if got := keptBalances(t, s); !mapsEqual(got, want) {
		t.Fatalf("ledger_balances %v, the entries sum to %v", got, want)
	}
	bs, err := s.Balances(context.Background(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != len(want) {
		t.Fatalf("Balances lists %d accounts, the entries have %d: %+v", len(bs), len(want), bs)
	}
	for i, b := range bs {
		if w, ok := want[accountCurrency{b.Account, b.Currency}]; !ok || w != b.Amount {
			t.Fatalf("Balances: %s %s is %d, its entries sum to %d", b.Account, b.Currency, b.Amount, w)
		}
		if i > 0 && (bs[i-1].Account > b.Account || bs[i-1].Account == b.Account && bs[i-1].Currency >= b.Currency) {
			t.Fatalf("Balances out of (account, currency) order at %d: %+v", i, bs)
		}
	}
}

func mapsEqual(a, b map[accountCurrency]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func post(ctx context.Context, s *Store, kind, ref string, entries ...ledger.Entry) error {
	return s.InTx(ctx, func(tx *Tx) error { return tx.Post(ctx, ledger.Transaction{Kind: kind, Ref: ref, Entries: entries}) })
}

func e(account, currency string, amount int64) ledger.Entry {
	return ledger.Entry{Account: account, Currency: currency, Amount: amount}
}

// The maintained balances are the sums of the entries after general postings (several accounts and
// currencies, an account twice in one transaction, accounts back to zero), lane batches and, on
// PostgreSQL, concurrent transactions of both; Balances lists them as the entries would, zero
// balances included. The full audit catches a balance changed behind the ledger's back.
func TestBalancesAreTheSumsOfTheEntries(t *testing.T) {
	onBoth(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		for i, lt := range [][]ledger.Entry{
			{e("refunds", "USD", 500), e("customer_funds:alice", "USD", -500)},
			{e("refunds", "EUR", 70), e("fees", "EUR", 30), e("customer_funds:bob", "EUR", -100)},
			{e("fees", "JPY", 9), e("fees", "JPY", 1), e("payouts_in_transit", "JPY", -10)},                                // an account twice
			{e("customer_funds:alice", "USD", 500), e("refunds", "USD", -500)},                                             // both back to zero
			{e("a", "USD", 1), e("b", "USD", 2), e("c", "USD", 3), e("d", "USD", 4), e("e", "USD", 5), e("f", "USD", -15)}, // a long one
		} {
			if err := post(ctx, s, "test", fmt.Sprint("general-", i), lt...); err != nil {
				t.Fatal(err)
			}
		}
		// Lane batches: captures of several accounts in one batch, and declines (no ledger).
		for _, acct := range []string{"carol", "dave"} {
			batchOfDeposits(t, s, acct, 20, func(i int) bool { return i%4 != 0 })
		}
		if s.Dialect() == sqldb.Postgres {
			// Lanes and general transactions at once, moving the same clearing account.
			var wg sync.WaitGroup
			errc := make(chan error, 64)
			for g := range 8 {
				wg.Go(func() {
					for i := range 10 {
						d := laneDeposit(s, fmt.Sprint("conc-", g%3), fmt.Sprint("conc-", g, "-", i), int64(1+i))
						if ok, err := s.ClaimDeposit(ctx, d); !ok || err != nil {
							errc <- fmt.Errorf("claim: %v %v", ok, err)
							return
						}
						if ok, err := s.ApplyVerdict(ctx, laneVerdict(s, d, true)); !ok || err != nil {
							errc <- fmt.Errorf("verdict: %v %v", ok, err)
							return
						}
						if err := post(ctx, s, "test", fmt.Sprint("conc-", g, "-", i),
							e("processor_receivable:acquirer", "USD", 7), e(fmt.Sprint("customer_funds:conc-", g%3), "USD", -7)); err != nil {
							errc <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errc)
			for err := range errc {
				t.Fatal(err)
			}
		}
		wantBalancesOfEntries(t, s)
		for _, k := range []accountCurrency{{"refunds", "USD"}, {"customer_funds:alice", "USD"}} {
			if b, err := s.Balances(ctx, k.account, k.currency); err != nil || len(b) != 1 || b[0].Amount != 0 {
				t.Fatalf("Balances(%s, %s) = %+v, %v; want one balance of 0", k.account, k.currency, b, err)
			}
		}
		if err := s.CheckInvariants(ctx); err != nil {
			t.Fatal(err)
		}

		// A maintained balance changed without entries: the audit names it, and once it is put
		// back it passes again.
		tamper := func(delta int64) {
			t.Helper()
			if n, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE ledger_balances SET balance = balance + ?
				WHERE account = 'customer_funds:carol' AND currency = 'USD'
				AND shard = (SELECT MIN(shard) FROM ledger_balances WHERE account = 'customer_funds:carol' AND currency = 'USD')`), delta); err != nil {
				t.Fatal(err)
			} else if k, _ := n.RowsAffected(); k != 1 {
				t.Fatalf("tampered with %d rows", k)
			}
		}
		tamper(1)
		if err := s.CheckInvariants(ctx); err == nil || !strings.Contains(err.Error(), "customer_funds:carol") {
			t.Fatalf("CheckInvariants after a balance was changed behind the ledger: %v", err)
		}
		tamper(-1)
		// A balance kept for an account without entries is caught too, even at zero.
		if _, err := s.db.ExecContext(ctx, `INSERT INTO ledger_balances (account, currency, shard, balance) VALUES ('ghost', 'USD', 0, 0)`); err != nil {
			t.Fatal(err)
		}
		if err := s.CheckInvariants(ctx); err == nil || !strings.Contains(err.Error(), "ghost") {
			t.Fatalf("CheckInvariants with a balance for an account without entries: %v", err)
		}
		if _, err := s.db.ExecContext(ctx, `DELETE FROM ledger_balances WHERE account = 'ghost'`); err != nil {
			t.Fatal(err)
		}
	})
}

// A transaction that posts and then fails leaves the maintained balances as they were, on its own
// and, on SQLite, in a group commit's batch beside transactions that commit; so does a posting the
// ledger refuses (the same kind and reference again).
func TestRolledBackPostLeavesBalances(t *testing.T) {
	check := func(t *testing.T, s *Store) {
		ctx := context.Background()
		if err := post(ctx, s, "test", "first", e("refunds", "USD", 100), e("customer_funds:alice", "USD", -100)); err != nil {
			t.Fatal(err)
		}
		before := keptBalances(t, s)
		boom := errors.New("boom")
		err := s.InTx(ctx, func(tx *Tx) error {
			if err := tx.Post(ctx, ledger.Transaction{Kind: "test", Ref: "undone", Entries: []ledger.Entry{
				e("refunds", "USD", 5), e("customer_funds:alice", "USD", -3), e("customer_funds:new", "USD", -2)}}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx: %v, want the function's error", err)
		}
		if err := post(ctx, s, "test", "first", e("refunds", "USD", 1), e("customer_funds:alice", "USD", -1)); err == nil {
			t.Fatal("the same kind and ref posted twice")
		}
		if got := keptBalances(t, s); !mapsEqual(got, before) {
			t.Fatalf("balances %v after rolled-back postings, want %v", got, before)
		}
		// Transactions that fail and transactions that commit, submitted together (one batch on
		// SQLite): only the committed ones count.
		var wg sync.WaitGroup
		errs := make([]error, 40)
		for i := range errs {
			wg.Go(func() {
				errs[i] = s.InTx(ctx, func(tx *Tx) error {
					if err := tx.Post(ctx, ledger.Transaction{Kind: "test", Ref: fmt.Sprint("mixed-", i), Entries: []ledger.Entry{
						e("refunds", "USD", 10), e(fmt.Sprint("customer_funds:m", i%4), "USD", -10)}}); err != nil {
						return err
					}
					if i%2 == 1 {
						return boom
					}
					return nil
				})
			})
		}
		wg.Wait()
		for i, err := range errs {
			if (i%2 == 1) != errors.Is(err, boom) || i%2 == 0 && err != nil {
				t.Fatalf("transaction %d: %v", i, err)
			}
		}
		want := before
		want[accountCurrency{"refunds", "USD"}] += 10 * int64(len(errs)/2)
		for i := 0; i < len(errs); i += 2 {
			want[accountCurrency{fmt.Sprint("customer_funds:m", i%4), "USD"}] -= 10
		}
		if got := keptBalances(t, s); !mapsEqual(got, want) {
			t.Fatalf("balances %v, want %v (the committed half only)", got, want)
		}
		wantBalancesOfEntries(t, s)
	}
	onBoth(t, check)
	t.Run("sqlite-nogroupcommit", func(t *testing.T) {
		s, err := OpenWith(context.Background(), filepath.Join(t.TempDir(), "payment.db"), Options{NoGroupCommit: true})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		check(t, s)
		if err := s.CheckInvariants(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

// Many transactions moving money between the same two accounts in both directions at once, on
// PostgreSQL's pool: every one commits (no deadlock: each locks its balance rows in one order), and
// the balances are exact. A pair of trading accounts and a pair of house accounts; two postings
// that picked the same shard lock the same rows.
func TestConcurrentOppositePostingsOnPostgres(t *testing.T) {
	s, err := OpenWith(context.Background(), testenv.StartPostgres(t), Options{NoGroupCommit: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	pairs := [][2]string{{"customer_funds:a", "customer_funds:b"}, {"refunds", "payouts_in_transit"}}
	const workers, each = 16, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				p := pairs[i%2]
				from, to := p[0], p[1]
				if (w+i)%2 == 1 {
					from, to = to, from
				}
				// A third leg in another currency makes each statement lock four rows.
				if err := post(ctx, s, "test", fmt.Sprint(w, "-", i), e(to, "USD", int64(1+w)), e(from, "USD", -int64(1+w)),
					e(to, "EUR", 1), e(from, "EUR", -1)); err != nil {
					errs <- fmt.Errorf("worker %d, posting %d (%s → %s): %w", w, i, from, to, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	wantBalancesOfEntries(t, s)
	// Each direction's net: worker w moves 1+w one way on even w+i, the other on odd.
	var netUSD, netEUR int64
	for w := range workers {
		for i := 0; i < each; i += 2 { // the trading accounts' postings
			if (w+i)%2 == 1 {
				netUSD, netEUR = netUSD-int64(1+w), netEUR-1
			} else {
				netUSD, netEUR = netUSD+int64(1+w), netEUR+1
			}
		}
	}
	got := keptBalances(t, s)
	if b, eu := got[accountCurrency{"customer_funds:b", "USD"}], got[accountCurrency{"customer_funds:b", "EUR"}]; b != netUSD || eu != netEUR {
		t.Fatalf("customer_funds:b is %d USD %d EUR, want %d USD %d EUR", b, eu, netUSD, netEUR)
	}
	if err := s.CheckInvariants(ctx); err != nil {
		t.Fatal(err)
	}
}
