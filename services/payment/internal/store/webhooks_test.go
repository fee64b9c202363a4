package store

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/sqldb"
	"github.com/bourse-dev/bourse/pkg/testenv"
	"github.com/bourse-dev/bourse/services/payment/internal/webhook"
)

// addEvents writes n events of account, each owed to every live endpoint of the account.
func addEvents(t *testing.T, s *Store, account string, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		err := s.InTx(ctx, func(tx *Tx) error {
			return tx.AddEvent(ctx, "payment.succeeded", account, fmt.Sprint("pay_", account, i), map[string]int{"n": i})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// Due with SkipAccounts returns none of the skipped accounts' deliveries, whichever of their
// endpoints they are owed to, and every other one; it claims none of the skipped, which the next
// Due without skips returns. Each delivery names its endpoint's account.
func TestDueSkipsAccounts(t *testing.T) {
	onBoth(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		endpoints := map[string]string{} // endpoint id -> account
		for _, a := range []string{"acct_a", "acct_a", "acct_a", "acct_b", "acct_c", "acct_c"} {
			endpoints[addEndpoint(t, s, a)] = a
		}
		for _, a := range []string{"acct_a", "acct_b", "acct_c"} {
			addEvents(t, s, a, 5)
		}
		byAccount := func(due []webhook.Delivery) map[string]int {
			got := map[string]int{}
			for _, d := range due {
				if d.Endpoint.Account != endpoints[d.Endpoint.ID] {
					t.Fatalf("delivery %s of endpoint %s names account %q, want %q", d.ID, d.Endpoint.ID, d.Endpoint.Account, endpoints[d.Endpoint.ID])
				}
				got[d.Endpoint.Account]++
			}
			return got
		}
		now := time.Now().Add(time.Hour)
		due, err := s.Webhooks().Due(ctx, webhook.DueQuery{Now: now, Lease: time.Minute, Limit: 100, SkipAccounts: []string{"acct_a", "acct_x"}})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := byAccount(due), map[string]int{"acct_b": 5, "acct_c": 10}; !reflect.DeepEqual(got, want) {
			t.Fatalf("due skipping acct_a: deliveries by account %v, want %v", got, want)
		}
		// Both kinds of skip at once: an endpoint of acct_a's is no less skipped for being listed
		// twice, and an unskipped account's endpoint is skipped alone.
		var oneOfA string
		for ep, a := range endpoints {
			if a == "acct_a" {
				oneOfA = ep
				break
			}
		}
		due, err = s.Webhooks().Due(ctx, webhook.DueQuery{Now: now, Lease: time.Minute, Limit: 100,
			SkipEndpoints: []string{oneOfA}, SkipAccounts: []string{"acct_a"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(due) != 0 {
			t.Fatalf("due again with acct_a skipped: %d deliveries, want none (b's and c's are claimed)", len(due))
		}
		due, err = s.Webhooks().Due(ctx, webhook.DueQuery{Now: now, Lease: time.Minute, Limit: 100, SkipEndpoints: []string{oneOfA}})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := byAccount(due), map[string]int{"acct_a": 10}; !reflect.DeepEqual(got, want) {
			t.Fatalf("due with one of acct_a's endpoints skipped: deliveries by account %v, want %v", got, want)
		}
		for _, d := range due {
			if d.Endpoint.ID == oneOfA {
				t.Fatalf("delivery %s of the skipped endpoint returned", d.ID)
			}
		}
	})
}

// Skipping accounts keeps Due's search on the due index (no scan of every delivery ever written,
// no sort), the skipped accounts' endpoints read by the account index. SQLite's plan.
func TestDueSkippingAccountsReadsIndexes(t *testing.T) {
	s := openStore(t, sqliteURL(t), Options{})
	query, args := dueQuery(webhook.DueQuery{Now: time.Now(), Limit: 32,
		SkipEndpoints: []string{"we_1", "we_2"}, SkipAccounts: []string{"acct_a", "acct_b", "acct_c"}}, sqldb.SQLite)
	steps := sqlitePlan(t, s, query, args...)
	plan := strings.Join(steps, "; ")
	searchesDue := slices.ContainsFunc(steps, func(st string) bool {
		return strings.HasPrefix(st, "SEARCH webhook_deliveries USING INDEX webhook_deliveries_due (final=? AND next_at<?)")
	})
	searchesAccounts := slices.ContainsFunc(steps, func(st string) bool {
		return strings.HasPrefix(st, "SEARCH webhook_endpoints USING") && strings.Contains(st, "INDEX webhook_endpoints_account (account_id=?)")
	})
	if !searchesDue || !searchesAccounts || strings.Contains(plan, "SCAN webhook_deliveries") || strings.Contains(plan, "TEMP B-TREE") {
		t.Errorf("plan %q: want a search of webhook_deliveries_due and of webhook_endpoints_account, no scan of the deliveries, no sort", plan)
	}
}

// On PostgreSQL too: with most deliveries final and a few due, a Due that skips accounts reads the
// due index, no scan of the deliveries and no sort, and finds the skipped accounts' endpoints by
// the account index.
func TestDueSkippingAccountsReadsIndexesOnPostgres(t *testing.T) {
	s := openStore(t, testenv.StartPostgres(t), Options{})
	conn := postgresConn(t, s,
		`INSERT INTO webhook_endpoints (id, caller, account_id, url, secret, created_at)
			SELECT 'we_' || g, 'c', 'acct_' || (g % 500), 'https://example.test/', 's', g FROM generate_series(1, 5000) g`,
		`INSERT INTO webhook_deliveries (id, event_id, endpoint_id, next_at, final, created_at)
			SELECT 'd_' || g, 'evt_' || g, 'we_' || (g % 5000 + 1), g, CASE WHEN g % 1000 = 0 THEN '' ELSE 'delivered' END, g
			FROM generate_series(1, 50000) g`,
		`ANALYZE`,
	)
	query, args := dueQuery(webhook.DueQuery{Now: time.Unix(0, 60000), Limit: 32,
		SkipEndpoints: []string{"we_1", "we_2"}, SkipAccounts: []string{"acct_1", "acct_2", "acct_3"}}, sqldb.Postgres)
	text := strings.Join(postgresPlan(t, conn, `EXPLAIN `+s.db.Rebind(query), args...), "\n")
	if !strings.Contains(text, " using webhook_deliveries_due ") || !strings.Contains(text, "webhook_endpoints_account") ||
		strings.Contains(text, "Seq Scan on webhook_deliveries") || strings.Contains(text, "Sort") {
		t.Errorf("plan\n%s\nwant a search of webhook_deliveries_due and of webhook_endpoints_account, no scan of the deliveries, no sort", text)
	}
}
