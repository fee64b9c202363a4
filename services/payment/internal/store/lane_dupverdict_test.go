package store

import (
	"context"
	"testing"

	"github.com/bourse-dev/bourse/services/payment/internal/domain"
)

// Within one batch: of two verdicts on one attempt exactly one is applied, and the rows written are
// that one's: its status on the payment, one verdict event, and a ledger transaction and outbox row
// only if it is a capture.
func TestLaneBatchDuplicateVerdicts(t *testing.T) {
	onBoth(t, func(t *testing.T, s *Store) {
		for _, c := range []struct {
			name  string
			first bool // approve
			then  bool
		}{{"two declines", false, false}, {"two captures", true, true}, {"decline then capture", false, true}, {"capture then decline", true, false}} {
			d := laneDeposit(s, "vdup", c.name, 5)
			items, done := claimItems([]*NewDeposit{d})
			if err := writeBatch(s, items); err != nil || !done[0] {
				t.Fatalf("claim: %v %v", done, err)
			}
			vs := []*DepositVerdict{laneVerdict(s, d, c.first), laneVerdict(s, d, c.then)}
			items, done = verdictItems(vs)
			if err := writeBatch(s, items); err != nil {
				t.Errorf("%s: the batch failed: %v", c.name, err)
				continue
			}
			if done[0] == done[1] {
				t.Errorf("%s: applied %v, want exactly one", c.name, done)
				continue
			}
			won := vs[0]
			if done[1] {
				won = vs[1]
			}
			p, err := s.GetPayment(context.Background(), d.Payment.ID)
			if err != nil {
				t.Fatal(err)
			}
			txs, _, box := ledgerOf(t, s, d.Payment.ID)
			captured := won.Payment.Status == domain.PaymentSucceeded
			if p.Status != won.Payment.Status || (txs == 1) != captured || (box == 1) != captured {
				t.Errorf("%s: applied verdict %s, stored payment %s with %d ledger transactions, %d outbox rows", c.name, won.Payment.Status, p.Status, txs, box)
			}
			if n := count(t, s, `SELECT COUNT(*) FROM events WHERE object_id = ?`, d.Payment.ID); n != 2 {
				t.Errorf("%s: %d events, want 2 (created, one verdict)", c.name, n)
			}
		}
	})
}
