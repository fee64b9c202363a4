package store

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/payment/internal/idempotency"
)

// Claims submitted together are written as given: payment, attempt, key record and event read back
// equal through the store's own reads.
func TestLaneClaimsReadBack(t *testing.T) {
	onBoth(t, func(t *testing.T, s *Store) {
		if !s.HasLanes() {
			t.Fatal("a store with group commit has no lanes")
		}
		ds := make([]*NewDeposit, 60)
		for i := range ds {
			ds[i] = laneDeposit(s, "lanes", fmt.Sprint("claim-", i), int64(100+i))
		}
		c0, _ := s.LaneWrites()
		for i, ok := range claimAll(t, s, ds) {
			if !ok {
				t.Fatalf("claim %d of a new key not claimed", i)
			}
		}
		if c1, _ := s.LaneWrites(); c1-c0 != int64(len(ds)) {
			t.Fatalf("lanes wrote %d claims, want %d", c1-c0, len(ds))
		}
		evs := events(t, s, "lanes")
		for _, d := range ds {
			wantStored(t, s, d, nil, evs)
		}
	})
}

// Of concurrent claims of one (caller, key) exactly one is claimed and the others write nothing; a
// key that already has a record is not claimed and its record stays as it was.
func TestLaneClaimDuplicateKey(t *testing.T) {
	onBoth(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		ds := make([]*NewDeposit, 20)
		for i := range ds {
			ds[i] = laneDeposit(s, "dup", "same", 500)
		}
		claimed := claimAll(t, s, ds)
		winner := slices.Index(claimed, true)
		if n := len(slices.DeleteFunc(slices.Clone(claimed), func(b bool) bool { return !b })); n != 1 {
			t.Fatalf("%d of %d claims of one key claimed, want 1", n, len(ds))
		}
		evs := events(t, s, "dup")
		wantStored(t, s, ds[winner], nil, evs)
		for i, d := range ds {
			if i == winner {
				continue
			}
			if _, err := s.GetPayment(ctx, d.Payment.ID); !isNotFound(err) {
				t.Fatalf("payment of a refused claim: %v, want not found", err)
			}
		}
		if n := count(t, s, `SELECT COUNT(*) FROM payments WHERE account_id = ?`, "dup"); n != 1 {
			t.Fatalf("%d payments for one key", n)
		}
		if n := count(t, s, `SELECT COUNT(*) FROM attempts a JOIN payments p ON p.id = a.payment_id WHERE p.account_id = ?`, "dup"); n != 1 {
			t.Fatalf("%d attempts for one key", n)
		}
		if len(evs) != 1 {
			t.Fatalf("%d events for one key", len(evs))
		}

		// A key finished through the general path: the lane does not claim it and leaves it alone.
		old := laneDeposit(s, "dup", "finished", 700)
		if !claimGeneral(t, s, old) {
			t.Fatal("general claim of a new key refused")
		}
		if err := settleGeneral(s, laneVerdict(s, old, false)); err != nil {
			t.Fatal(err)
		}
		before := keyRecord(t, s, old.Key.Caller, old.Key.Key)
		again := laneDeposit(s, "dup", "finished", 700)
		if ok, err := s.ClaimDeposit(ctx, again); ok || err != nil {
			t.Fatalf("claim of a key with a record: claimed %v, %v", ok, err)
		}
		if after := keyRecord(t, s, old.Key.Caller, old.Key.Key); !reflect.DeepEqual(after, before) || after.State != idempotency.Done {
			t.Fatalf("record changed by a refused claim\n%+v\nwas\n%+v", after, before)
		}
		if _, err := s.GetPayment(ctx, again.Payment.ID); !isNotFound(err) {
			t.Fatalf("payment of a refused claim: %v", err)
		}
		if n := count(t, s, `SELECT COUNT(*) FROM events WHERE object_id = ?`, again.Payment.ID); n != 0 {
			t.Fatalf("%d events of a refused claim", n)
		}
	})
}

func isNotFound(err error) bool { return errs.KindOf(err) == errs.KindNotFound }

// A claim without a first attempt (a deposit whose attempt is made after its fraud check) writes
// the key, the payment and its event, and no attempt.
func TestLaneClaimWithoutAttempt(t *testing.T) {
	onBoth(t, func(t *testing.T, s *Store) {
		d := laneDeposit(s, "noatt", "k", 300)
		d.Attempt = nil
		if ok, err := s.ClaimDeposit(context.Background(), d); !ok || err != nil {
			t.Fatalf("claim: %v %v", ok, err)
		}
		got, err := s.GetPayment(context.Background(), d.Payment.ID)
		if err != nil || !reflect.DeepEqual(got, d.Payment) {
			t.Fatalf("payment read back %+v (%v)\nwant %+v", got, err, d.Payment)
		}
		if rec := keyRecord(t, s, d.Key.Caller, d.Key.Key); rec.State != idempotency.InFlight || rec.ObjectID != d.Payment.ID {
			t.Fatalf("key record %+v", rec)
		}
		if evs := events(t, s, "noatt"); len(evs) != 1 || evs[d.Event.ID].Type != "payment.created" {
			t.Fatalf("events %+v", evs)
		}
	})
}

// The lanes and the general path claim side by side (on SQLite on the one write connection, on
// PostgreSQL on the pool): of a lane's and a general claim of one key exactly one owns it and the
// other wrote nothing, and neither path waits on the other for good.
func TestLaneBesideGeneralPath(t *testing.T) {
	onBoth(t, func(t *testing.T, s *Store) {
		const n = 50
		viaLane, viaGeneral := make([]*NewDeposit, n), make([]*NewDeposit, n)
		laneOwns, generalOwns := make([]bool, n), make([]bool, n)
		var wg sync.WaitGroup
		for i := range n {
			key := fmt.Sprint("both-", i)
			viaLane[i], viaGeneral[i] = laneDeposit(s, "beside", key, 10), laneDeposit(s, "beside", key, 10)
			wg.Go(func() {
				var err error
				if laneOwns[i], err = s.ClaimDeposit(context.Background(), viaLane[i]); err != nil {
					t.Errorf("lane claim %d: %v", i, err)
				}
			})
			wg.Go(func() {
				var err error
				if generalOwns[i], err = tryClaimGeneral(s, viaGeneral[i]); err != nil {
					t.Errorf("general claim %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		for i := range n {
			if laneOwns[i] == generalOwns[i] {
				t.Fatalf("key %d: lane owns %v, general owns %v; want exactly one", i, laneOwns[i], generalOwns[i])
			}
			owner, loser := viaLane[i], viaGeneral[i]
			if generalOwns[i] {
				owner, loser = loser, owner
			}
			if rec := keyRecord(t, s, owner.Key.Caller, owner.Key.Key); rec.ObjectID != owner.Payment.ID {
				t.Fatalf("key %d names %s, want the owner's %s", i, rec.ObjectID, owner.Payment.ID)
			}
			if _, err := s.GetPayment(context.Background(), loser.Payment.ID); !isNotFound(err) {
				t.Fatalf("key %d: the loser's payment: %v", i, err)
			}
		}
		for q, want := range map[string]int{
			`SELECT COUNT(*) FROM payments WHERE account_id = ?`:                                            n,
			`SELECT COUNT(*) FROM attempts a JOIN payments p ON p.id = a.payment_id WHERE p.account_id = ?`: n,
			`SELECT COUNT(*) FROM events WHERE account_id = ?`:                                              n,
		} {
			if got := count(t, s, q, "beside"); got != want {
				t.Fatalf("%s: %d, want %d", q, got, want)
			}
		}
	})
}
