package store

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/bourse-dev/bourse/services/payment/internal/ledger"
)

// ledgerOf counts the ledger transactions and entries about ref and the outbox rows for it.
func ledgerOf(t *testing.T, s *Store, ref string) (txs, entries, outbox int) {
	t.Helper()
	txs = count(t, s, `SELECT COUNT(*) FROM ledger_transactions WHERE ref = ?`, ref)
	entries = count(t, s, `SELECT COUNT(*) FROM ledger_entries e JOIN ledger_transactions l ON l.id = e.tx_id WHERE l.ref = ?`, ref)
	outbox = count(t, s, `SELECT COUNT(*) FROM outbox WHERE ref = ?`, ref)
	return txs, entries, outbox
}

// Verdicts submitted together are applied once each, with the ledger transaction, entries and
// outbox row of a capture exactly once and none for a decline; a second verdict on a settled attempt
// (from the lane or after the general path settled it) is not applied and writes nothing.
func TestLaneVerdicts(t *testing.T) {
	onBoth(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		ds := make([]*NewDeposit, 40)
		for i := range ds {
			ds[i] = laneDeposit(s, "verdicts", fmt.Sprint("v-", i), int64(1000+i))
		}
		for i, ok := range claimAll(t, s, ds) {
			if !ok {
				t.Fatalf("claim %d not claimed", i)
			}
		}
		// The last 5 are settled through the general path before their lane verdict.
		lane, general := ds[:35], ds[35:]
		for _, d := range general {
			if err := settleGeneral(s, laneVerdict(s, d, true)); err != nil {
				t.Fatal(err)
			}
		}
		vs := make([]*DepositVerdict, len(ds))
		for i, d := range ds {
			vs[i] = laneVerdict(s, d, i%3 != 0) // every third declined
		}
		_, v0 := s.LaneWrites()
		applied := applyAll(t, s, vs)
		for i := range ds {
			if want := i < len(lane); applied[i] != want {
				t.Fatalf("verdict %d applied %v, want %v", i, applied[i], want)
			}
		}
		if _, v1 := s.LaneWrites(); v1-v0 != int64(len(lane)) {
			t.Fatalf("lanes wrote %d verdicts, want %d", v1-v0, len(lane))
		}
		evs := events(t, s, "verdicts")
		for i, d := range lane {
			wantStored(t, s, d, vs[i], evs)
		}
		check := func(when string) {
			t.Helper()
			for i, d := range ds {
				txs, entries, box := ledgerOf(t, s, d.Payment.ID)
				want := 0
				if i >= len(lane) || i%3 != 0 {
					want = 1
				}
				if txs != want || entries != 2*want || box != want {
					t.Fatalf("%s: payment %d: %d ledger transactions, %d entries, %d outbox rows; want %d, %d, %d",
						when, i, txs, entries, box, want, 2*want, want)
				}
				if n := count(t, s, `SELECT COUNT(*) FROM events WHERE object_id = ?`, d.Payment.ID); n != 2 {
					t.Fatalf("%s: payment %d has %d events, want 2", when, i, n)
				}
			}
		}
		check("after the verdicts")

		// Second verdicts on every attempt, the opposite way: none applies, nothing is written, and
		// the payments and saved results stay the first verdicts'.
		again := make([]*DepositVerdict, len(ds))
		for i, d := range ds {
			again[i] = laneVerdict(s, d, i%3 == 0)
		}
		for i, ok := range applyAll(t, s, again) {
			if ok {
				t.Fatalf("second verdict %d applied", i)
			}
		}
		if _, v2 := s.LaneWrites(); v2-v0 != int64(len(lane)) {
			t.Fatalf("lanes counted %d verdicts after the second ones, want %d", v2-v0, len(lane))
		}
		check("after second verdicts")
		evs = events(t, s, "verdicts")
		for i, d := range lane {
			wantStored(t, s, d, vs[i], evs)
		}
		// The general path refuses them too (its compare-and-set sees the lane's write).
		if err := settleGeneral(s, again[0]); !errors.Is(err, ErrConflict) {
			t.Fatalf("general settle of a lane-settled attempt: %v, want ErrConflict", err)
		}
		if err := s.CheckInvariants(ctx); err != nil {
			t.Fatal(err)
		}
		var captured int64
		for i, d := range ds {
			if i >= len(lane) || i%3 != 0 {
				captured += d.Payment.Amount.Amount
			}
		}
		bs, err := s.Balances(ctx, ledger.Customer("verdicts"), "USD")
		if err != nil || len(bs) != 1 || bs[0].Amount != -captured {
			t.Fatalf("customer balance %+v, %v; want -%d", bs, err, captured)
		}
	})
}
