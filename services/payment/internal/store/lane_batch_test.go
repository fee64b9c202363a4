package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/bourse-dev/bourse/pkg/testenv"
	"github.com/bourse-dev/bourse/services/payment/internal/domain"
)

// writeBatch writes items as one lane batch, in one transaction, as a lane's committer does: the
// batch's size and make-up are then the test's, not the scheduler's.
func writeBatch(s *Store, items []laneItem) error {
	ctx := context.Background()
	return s.db.InTx(ctx, func(tx *sql.Tx) error { return s.writeLane(ctx, tx, items) })
}

func claimItems(ds []*NewDeposit) ([]laneItem, []bool) {
	done := make([]bool, len(ds))
	items := make([]laneItem, len(ds))
	for i, d := range ds {
		items[i] = laneItem{claim: d, done: &done[i]}
	}
	return items, done
}

func verdictItems(vs []*DepositVerdict) ([]laneItem, []bool) {
	done := make([]bool, len(vs))
	items := make([]laneItem, len(vs))
	for i, v := range vs {
		items[i] = laneItem{verdict: v, done: &done[i]}
	}
	return items, done
}

// addEndpoint stores a webhook endpoint of account taking types (none: every type).
func addEndpoint(t *testing.T, s *Store, account string, types ...string) string {
	t.Helper()
	ctx := context.Background()
	e := domain.WebhookEndpoint{ID: domain.NewID("we"), AccountID: account, URL: "https://127.0.0.1/hook", EventTypes: types, Secret: "s"}
	if err := s.InTx(ctx, func(tx *Tx) error { return tx.InsertEndpoint(ctx, "account:"+account, &e) }); err != nil {
		t.Fatal(err)
	}
	return e.ID
}

// batchOfDeposits claims n new deposits of account in one lane batch, then writes their verdicts
// (captured where approve(i), declined otherwise) in another, and fails unless every claim and
// verdict was written.
func batchOfDeposits(t *testing.T, s *Store, account string, n int, approve func(i int) bool) ([]*NewDeposit, []*DepositVerdict) {
	t.Helper()
	ds := make([]*NewDeposit, n)
	for i := range ds {
		ds[i] = laneDeposit(s, account, fmt.Sprint("b-", i), int64(10+i))
	}
	items, done := claimItems(ds)
	if err := writeBatch(s, items); err != nil {
		t.Fatalf("%d claims: %v", n, err)
	}
	vs := make([]*DepositVerdict, n)
	for i, d := range ds {
		if !done[i] {
			t.Fatalf("%d claims: claim %d not claimed", n, i)
		}
		vs[i] = laneVerdict(s, d, approve(i))
	}
	items, done = verdictItems(vs)
	if err := writeBatch(s, items); err != nil {
		t.Fatalf("%d verdicts: %v", n, err)
	}
	for i := range done {
		if !done[i] {
			t.Fatalf("%d verdicts: verdict %d not applied", n, i)
		}
	}
	return ds, vs
}

// Batches of every padded size, and larger than one statement takes (maxSetRows: the lane's
// statements then run in chunks), write every row: with two endpoints taking every event, a batch of
// n claims owes 2n deliveries, and one of n captures 2n ledger entries.
func TestLaneBatchSizes(t *testing.T) {
	onBoth(t, func(t *testing.T, s *Store) {
		for _, n := range []int{1, 2, 3, 5, 17, 128, 129, 300} {
			account := fmt.Sprint("sizes", n)
			addEndpoint(t, s, account)
			addEndpoint(t, s, account)
			ds, vs := batchOfDeposits(t, s, account, n, func(int) bool { return true })
			evs := events(t, s, account)
			for i, d := range ds {
				// Every row of a small batch is read back; of a large one a sample across its
				// chunks (the counts below cover the rest).
				if n > 17 && i%16 != 0 && i != n-1 {
					continue
				}
				wantStored(t, s, d, vs[i], evs)
				if txs, entries, box := ledgerOf(t, s, d.Payment.ID); txs != 1 || entries != 2 || box != 1 {
					t.Fatalf("%d verdicts: payment %d: %d ledger transactions, %d entries, %d outbox rows", n, i, txs, entries, box)
				}
			}
			if len(evs) != 2*n {
				t.Fatalf("batches of %d: %d events, want %d", n, len(evs), 2*n)
			}
			for q, want := range map[string]int{
				`SELECT COUNT(*) FROM payments WHERE account_id = ? AND status = 'succeeded'`:                                             n,
				`SELECT COUNT(*) FROM attempts a JOIN payments p ON p.id = a.payment_id WHERE p.account_id = ? AND a.status = 'captured'`: n,
				`SELECT COUNT(*) FROM idempotency WHERE caller = 'account:' || ? AND state = 'done' AND response <> ''`:                   n,
				`SELECT COUNT(*) FROM ledger_transactions l JOIN payments p ON p.id = l.ref WHERE p.account_id = ?`:                       n,
				`SELECT COUNT(*) FROM ledger_entries e JOIN ledger_transactions l ON l.id = e.tx_id
					JOIN payments p ON p.id = l.ref WHERE p.account_id = ?`: 2 * n,
				`SELECT COUNT(*) FROM outbox o JOIN payments p ON p.id = o.ref WHERE p.account_id = ?`: n,
			} {
				if got := count(t, s, q, account); got != want {
					t.Fatalf("batches of %d: %s: %d, want %d", n, q, got, want)
				}
			}
			if got := count(t, s, `SELECT COUNT(*) FROM webhook_deliveries d JOIN events e ON e.id = d.event_id WHERE e.account_id = ?`,
				account); got != 4*n {
				t.Fatalf("batches of %d: %d deliveries, want %d", n, got, 4*n)
			}
		}
	})
}

// Many concurrent claims and verdicts, more than one lane batch holds, are all written.
func TestLaneManyConcurrent(t *testing.T) {
	onBoth(t, func(t *testing.T, s *Store) {
		const n = 300
		addEndpoint(t, s, "many")
		ds := make([]*NewDeposit, n)
		for i := range ds {
			ds[i] = laneDeposit(s, "many", fmt.Sprint("m-", i), int64(1+i))
		}
		c0, v0 := s.LaneWrites()
		for i, ok := range claimAll(t, s, ds) {
			if !ok {
				t.Fatalf("claim %d not claimed", i)
			}
		}
		vs := make([]*DepositVerdict, n)
		for i, d := range ds {
			vs[i] = laneVerdict(s, d, i%2 == 0)
		}
		for i, ok := range applyAll(t, s, vs) {
			if !ok {
				t.Fatalf("verdict %d not applied", i)
			}
		}
		if c1, v1 := s.LaneWrites(); c1-c0 != n || v1-v0 != n {
			t.Fatalf("lanes wrote %d claims and %d verdicts, want %d of each", c1-c0, v1-v0, n)
		}
		evs := events(t, s, "many")
		for i, d := range ds {
			wantStored(t, s, d, vs[i], evs)
		}
		if got := count(t, s, `SELECT COUNT(*) FROM ledger_transactions`); got != n/2 {
			t.Fatalf("%d ledger transactions, want %d", got, n/2)
		}
		if got := count(t, s, `SELECT COUNT(*) FROM ledger_entries`); got != n {
			t.Fatalf("%d ledger entries, want %d", got, n)
		}
		if got, err := s.OutboxLen(context.Background()); err != nil || got != n/2 {
			t.Fatalf("%d outbox rows (%v), want %d", got, err, n/2)
		}
		if got := count(t, s, `SELECT COUNT(*) FROM webhook_deliveries`); got != 2*n {
			t.Fatalf("%d deliveries, want %d", got, 2*n)
		}
	})
}

// Within one batch: of claims of one key the first claims it and the others write nothing.
func TestLaneBatchDuplicateClaims(t *testing.T) {
	onBoth(t, func(t *testing.T, s *Store) {
		ds := []*NewDeposit{laneDeposit(s, "bdup", "k", 5), laneDeposit(s, "bdup", "k", 5), laneDeposit(s, "bdup", "other", 5),
			laneDeposit(s, "bdup", "k", 5), laneDeposit(s, "bdup2", "k", 5)}
		items, done := claimItems(ds)
		if err := writeBatch(s, items); err != nil {
			t.Fatal(err)
		}
		// Keys are the caller's: another caller's k is its own.
		if !done[4] {
			t.Fatal("another caller's claim of the same key not claimed")
		}
		owners := 0
		for _, i := range []int{0, 1, 3} {
			if done[i] {
				owners++
				continue
			}
			if _, err := s.GetPayment(context.Background(), ds[i].Payment.ID); !isNotFound(err) {
				t.Fatalf("payment of a refused claim: %v", err)
			}
		}
		if owners != 1 || !done[2] {
			t.Fatalf("claims done %v: want one of the three of key k, and the other key's", done)
		}
		if got := count(t, s, `SELECT COUNT(*) FROM payments`); got != 3 {
			t.Fatalf("%d payments, want 3", got)
		}
		if got := count(t, s, `SELECT COUNT(*) FROM events`); got != 3 {
			t.Fatalf("%d events, want 3", got)
		}
		if got := count(t, s, `SELECT COUNT(*) FROM attempts`); got != 3 {
			t.Fatalf("%d attempts, want 3", got)
		}
	})
}

// A verdict whose attempt's compare-and-set holds but whose payment's does not fails the whole batch:
// nothing of it is written, and ApplyVerdict reports the failure (its caller takes the general path).
func TestLaneVerdictMismatchFailsBatch(t *testing.T) {
	onBoth(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		ds := []*NewDeposit{laneDeposit(s, "mismatch", "a", 100), laneDeposit(s, "mismatch", "b", 200)}
		items, done := claimItems(ds)
		if err := writeBatch(s, items); err != nil || !done[0] || !done[1] {
			t.Fatalf("claims: %v %v", done, err)
		}
		// b's payment moves on without its attempt (as a cancel would).
		if err := s.InTx(ctx, func(tx *Tx) error {
			p := ds[1].Payment
			p.Status = domain.PaymentCanceled
			return tx.SetPaymentStatus(ctx, &p, domain.PaymentProcessing)
		}); err != nil {
			t.Fatal(err)
		}
		vs := []*DepositVerdict{laneVerdict(s, ds[0], true), laneVerdict(s, ds[1], true)}
		items, _ = verdictItems(vs)
		if err := writeBatch(s, items); !errors.Is(err, errLaneMismatch) {
			t.Fatalf("batch with a mismatched verdict: %v, want errLaneMismatch", err)
		}
		for _, d := range ds {
			got, err := s.GetPayment(ctx, d.Payment.ID)
			if err != nil || got.Attempts[0].Status != domain.AttemptPending {
				t.Fatalf("attempt after a failed batch: %+v, %v", got.Attempts, err)
			}
			if txs, entries, box := ledgerOf(t, s, d.Payment.ID); txs+entries+box != 0 {
				t.Fatalf("a failed batch wrote %d ledger transactions, %d entries, %d outbox rows", txs, entries, box)
			}
		}
		if ok, err := s.ApplyVerdict(ctx, vs[1]); ok || err == nil {
			t.Fatalf("lane verdict on a moved payment: applied %v, %v; want an error", ok, err)
		}
		// The other verdict alone is applied.
		if ok, err := s.ApplyVerdict(ctx, vs[0]); !ok || err != nil {
			t.Fatalf("lane verdict alone: applied %v, %v", ok, err)
		}
		wantStored(t, s, ds[0], vs[0], events(t, s, "mismatch"))
	})
}

// A batch with more accounts than one statement takes looks up every account's endpoints (the
// lookup runs in chunks too) and owes each event to its own account's endpoint only.
func TestLaneBatchManyAccounts(t *testing.T) {
	onBoth(t, func(t *testing.T, s *Store) {
		const n = 300
		ds := make([]*NewDeposit, n)
		endpoint := map[string]string{}
		for i := range ds {
			account := fmt.Sprint("acct-", i)
			ds[i] = laneDeposit(s, account, "k", 7)
			if i%3 != 2 { // every third account has no endpoint
				endpoint[account] = addEndpoint(t, s, account)
			}
		}
		items, done := claimItems(ds)
		if err := writeBatch(s, items); err != nil {
			t.Fatal(err)
		}
		rows, err := s.query(context.Background(), `SELECT d.endpoint_id, e.account_id FROM webhook_deliveries d JOIN events e ON e.id = d.event_id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		got := 0
		for rows.Next() {
			var ep, account string
			if err := rows.Scan(&ep, &account); err != nil {
				t.Fatal(err)
			}
			if endpoint[account] != ep {
				t.Fatalf("%s's event owed to endpoint %s, want %q", account, ep, endpoint[account])
			}
			got++
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		for i := range done {
			if !done[i] {
				t.Fatalf("claim %d not claimed", i)
			}
		}
		if got != len(endpoint) {
			t.Fatalf("%d deliveries, want %d (one per account with an endpoint)", got, len(endpoint))
		}
	})
}

// Close writes what the lanes have queued: a claim answered claimed is in the database when it is
// opened again, one refused for the closing is not, and nothing is answered both ways.
func TestLaneCloseWritesWhatIsQueued(t *testing.T) {
	check := func(t *testing.T, url string) {
		ctx := context.Background()
		s, err := Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		const n = 200
		ds := make([]*NewDeposit, n)
		for i := range ds {
			ds[i] = laneDeposit(s, "closing", fmt.Sprint("c-", i), 3)
		}
		claimed, errs := make([]bool, n), make([]error, n)
		started := make(chan struct{}, n)
		var wg sync.WaitGroup
		for i, d := range ds {
			wg.Go(func() {
				started <- struct{}{}
				claimed[i], errs[i] = s.ClaimDeposit(ctx, d)
			})
		}
		for range n / 2 {
			<-started
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		s, err = Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		written := 0
		for i, d := range ds {
			_, err := s.GetPayment(ctx, d.Payment.ID)
			switch {
			case claimed[i] && err != nil:
				t.Fatalf("claim %d answered claimed, then read back: %v", i, err)
			case !claimed[i] && errs[i] == nil:
				t.Fatalf("claim %d of a new key answered not claimed without an error", i)
			case !claimed[i] && !isNotFound(err):
				t.Fatalf("claim %d answered %v, yet its payment reads back (%v)", i, errs[i], err)
			case claimed[i]:
				written++
			}
		}
		if written == 0 {
			t.Fatal("no claim was written before the close")
		}
		t.Logf("%d of %d claims written, the rest refused for the closing", written, n)
		if err := s.CheckInvariants(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("sqlite", func(t *testing.T) { check(t, filepath.Join(t.TempDir(), "payment.db")) })
	t.Run("postgres", func(t *testing.T) { check(t, testenv.StartPostgres(t)) })
}
