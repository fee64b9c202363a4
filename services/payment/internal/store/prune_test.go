package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/services/payment/internal/idempotency"
)

// PruneKeys removes every finished record created before the cutoff, oldest first, in statements of
// pruneBatch records, and no other: records in retention and records still in flight stay. A
// backlog larger than one call's share is gone after a few calls, each bounded.
func TestPruneKeysDeletesInBoundedStatements(t *testing.T) {
	defer func(b, p int) { pruneBatch, prunePass = b, p }(pruneBatch, prunePass)
	pruneBatch, prunePass = 7, 3 // 21 records a call
	onBoth(t, func(t *testing.T, s *Store) {
		base := time.Unix(1_700_000_000, 0)
		claim := func(i int, done bool) string {
			at := base.Add(time.Duration(i) * time.Millisecond)
			s.SetClock(func() time.Time { return at })
			return claimForPrune(t, s, i, done)
		}
		var expired, kept []string
		for i := range 50 {
			key := claim(i, i%10 != 3) // every tenth in flight
			if i%10 == 3 {
				kept = append(kept, key)
			} else {
				expired = append(expired, key)
			}
		}
		for i := 50; i < 60; i++ { // within retention
			kept = append(kept, claim(i, true))
		}
		cutoff := base.Add(50 * time.Millisecond)
		pruneAll(t, s, cutoff, expired, kept)
	})
}

// Each statement finds its records through idempotency_created and deletes them by primary key:
// no scan of the table, whose size is the whole retention.
func TestPruneKeysReadsTheCreationIndex(t *testing.T) {
	s := openStore(t, sqliteURL(t), Options{})
	plan := strings.Join(sqlitePlan(t, s, pruneKeysQuery, idempotency.Done, 1, pruneBatch), "; ")
	if !strings.Contains(plan, "USING INDEX idempotency_created") || strings.Contains(plan, "SCAN") {
		t.Fatalf("plan %q, want a search of idempotency_created and no scan", plan)
	}
}

// Records created in the same instant (a burst of requests, a coarse clock) are pruned as the others
// are: each statement takes pruneBatch of the tied records, the next ones the rest, and none in
// flight among them, on both engines.
func TestPruneKeysWithEqualCreationTimes(t *testing.T) {
	defer func(b, p int) { pruneBatch, prunePass = b, p }(pruneBatch, prunePass)
	pruneBatch, prunePass = 7, 3
	onBoth(t, func(t *testing.T, s *Store) {
		at := time.Unix(1_700_000_000, 0)
		s.SetClock(func() time.Time { return at })
		var expired, inFlight []string
		for i := range 50 {
			if done := i%10 != 3; done {
				expired = append(expired, claimForPrune(t, s, i, true))
			} else {
				inFlight = append(inFlight, claimForPrune(t, s, i, false))
			}
		}
		pruneAll(t, s, at.Add(time.Millisecond), expired, inFlight)
	})
}

// claimForPrune claims key i of account a at the store's clock, and completes it if done.
func claimForPrune(t *testing.T, s *Store, i int, done bool) string {
	t.Helper()
	ctx := context.Background()
	key := fmt.Sprintf("k%03d", i)
	if err := s.InTx(ctx, func(tx *Tx) error {
		_, _, err := tx.ClaimKey(ctx, idempotency.Record{Caller: "account:a", Key: key, Method: "CreatePayment", Fingerprint: "f",
			State: idempotency.InFlight}, time.Hour)
		if err == nil && done {
			err = tx.CompleteKey(ctx, "account:a", key, []byte(`{}`), nil)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return key
}

// pruneAll calls PruneKeys until it deletes nothing (45 expired records, 21 a call with the tests'
// pruneBatch 7 and prunePass 3), then checks that every expired key is gone and every kept one
// (in flight or in retention) is there.
func pruneAll(t *testing.T, s *Store, cutoff time.Time, expired, kept []string) {
	t.Helper()
	ctx := context.Background()
	var calls []int64
	for range 5 {
		n, err := s.PruneKeys(ctx, cutoff)
		if err != nil {
			t.Fatal(err)
		}
		if calls = append(calls, n); n == 0 {
			break
		}
	}
	if want := []int64{21, 21, 3, 0}; fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Fatalf("deleted %v per call, want %v (45 expired, 21 a call at most)", calls, want)
	}
	for _, key := range expired {
		if _, err := scanKey(s.queryRow(ctx, qKey, "account:a", key), "account:a", key); !errors.Is(err, sql.ErrNoRows) {
			t.Fatalf("expired record %s still there: %v", key, err)
		}
	}
	for _, key := range kept {
		if _, err := scanKey(s.queryRow(ctx, qKey, "account:a", key), "account:a", key); err != nil {
			t.Fatalf("record %s (in flight or in retention) pruned: %v", key, err)
		}
	}
}
