package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/testenv"
	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/idempotency"
	"github.com/bourse-dev/bourse/services/payment/internal/ledger"
	"github.com/bourse-dev/bourse/services/payment/internal/paytest"
	"github.com/bourse-dev/bourse/services/payment/internal/webhook"
)

// onBothWithGeneral is onBoth with a second store on the same database opened with NoGroupCommit:
// no lanes, every transaction on its own, the configuration in which every deposit takes the
// general path.
func onBothWithGeneral(t *testing.T, fn func(t *testing.T, s, general *Store)) {
	withGeneral := func(t *testing.T, url string) {
		run(t, url, func(t *testing.T, s *Store) {
			g, err := OpenWith(context.Background(), url, Options{NoGroupCommit: true})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			if g.HasLanes() {
				t.Fatal("a store without group commit has lanes")
			}
			if ok, err := g.ClaimDeposit(context.Background(), laneDeposit(g, "x", "x", 1)); ok || !errors.Is(err, errNoLanes) {
				t.Fatalf("lane claim without lanes: claimed %v, %v", ok, err)
			}
			fn(t, s, g)
		})
	}
	t.Run("sqlite", func(t *testing.T) { withGeneral(t, filepath.Join(t.TempDir(), "payment.db")) })
	t.Run("postgres", func(t *testing.T) { withGeneral(t, testenv.StartPostgres(t)) })
}

// deliveries is, by event type, the endpoints owed an event about payment id (sorted), checking
// that every delivery row is as addDeliveries writes it.
func deliveries(t *testing.T, s *Store, id string) map[string][]string {
	t.Helper()
	rows, err := s.query(context.Background(), `SELECT d.id, d.event_id, d.endpoint_id, d.attempts, d.next_at, d.final, d.created_at,
		e.type, e.created_at FROM webhook_deliveries d JOIN events e ON e.id = d.event_id WHERE e.object_id = ?`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var did, eid, ep, final, typ string
		var attempts int
		var next, created, evCreated int64
		if err := rows.Scan(&did, &eid, &ep, &attempts, &next, &final, &created, &typ, &evCreated); err != nil {
			t.Fatal(err)
		}
		if did != eid+":"+ep || attempts != 0 || final != "" || next != evCreated || created != evCreated {
			t.Fatalf("delivery %s (event %s, endpoint %s): attempts %d, final %q, next_at %d, created_at %d; event created %d",
				did, eid, ep, attempts, final, next, created, evCreated)
		}
		out[typ] = append(out[typ], ep)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, eps := range out {
		slices.Sort(eps)
	}
	return out
}

// Lane events are owed to exactly the endpoints the general path's AddEvent owes them to: every
// live endpoint of the account that takes the event's type, not a deleted one nor another account's.
func TestLaneWebhookDeliveries(t *testing.T) {
	onBothWithGeneral(t, func(t *testing.T, s, g *Store) {
		ctx := context.Background()
		all := addEndpoint(t, s, "hooks")
		succeeded := addEndpoint(t, s, "hooks", "payment.succeeded")
		addEndpoint(t, s, "hooks", "payment.refunded")
		deleted := addEndpoint(t, s, "hooks")
		if err := s.DeleteEndpoint(ctx, deleted); err != nil {
			t.Fatal(err)
		}
		addEndpoint(t, s, "someone-else")
		for _, approve := range []bool{true, false} {
			viaLane := laneDeposit(s, "hooks", "lane", 300)
			viaGeneral := laneDeposit(g, "hooks", "general", 300)
			if approve {
				viaLane.Key.Key, viaGeneral.Key.Key = "lane-captured", "general-captured"
			}
			if ok, err := s.ClaimDeposit(ctx, viaLane); !ok || err != nil {
				t.Fatalf("lane claim: %v %v", ok, err)
			}
			if ok, err := s.ApplyVerdict(ctx, laneVerdict(s, viaLane, approve)); !ok || err != nil {
				t.Fatalf("lane verdict: %v %v", ok, err)
			}
			if !claimGeneral(t, g, viaGeneral) {
				t.Fatal("general claim refused")
			}
			if err := settleGeneral(g, laneVerdict(g, viaGeneral, approve)); err != nil {
				t.Fatal(err)
			}
			want := map[string][]string{"payment.created": {all}, "payment.failed": {all}}
			if approve {
				want = map[string][]string{"payment.created": {all}, "payment.succeeded": slices.Sorted(slices.Values([]string{all, succeeded}))}
			}
			lane, general := deliveries(t, s, viaLane.Payment.ID), deliveries(t, s, viaGeneral.Payment.ID)
			if !reflect.DeepEqual(general, want) {
				t.Fatalf("captured %v: the general path's deliveries %v, want %v", approve, general, want)
			}
			if !reflect.DeepEqual(lane, general) {
				t.Fatalf("captured %v: lane deliveries %v, the general path's %v", approve, lane, general)
			}
		}
		// The dispatcher's own read hands out every one of them (the deleted endpoint's were never
		// written): 4 events to the all-types endpoint, 2 to the succeeded one.
		due, err := s.Webhooks().Due(ctx, webhook.DueQuery{Now: time.Now().Add(time.Hour), Limit: 100, Lease: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		byEndpoint := map[string]int{}
		for _, d := range due {
			byEndpoint[d.Endpoint.ID]++
		}
		if want := map[string]int{all: 8, succeeded: 2}; !reflect.DeepEqual(byEndpoint, want) {
			t.Fatalf("due deliveries by endpoint %v, want %v", byEndpoint, want)
		}
	})
}

// The same deposit written by a lane and by the general path (a store without lanes) reads back the
// same, saved idempotency result included; the lane's saved result is the payment as stored.
func TestLaneEquivalentToGeneralPath(t *testing.T) {
	onBothWithGeneral(t, func(t *testing.T, s, g *Store) {
		ctx := context.Background()
		for _, approve := range []bool{true, false} {
			viaLane := laneDeposit(s, "equiv", "lane", 4200)
			viaGeneral := laneDeposit(g, "equiv", "general", 4200)
			if approve {
				viaLane.Key.Key, viaGeneral.Key.Key = "lane-captured", "general-captured"
			}
			viaGeneral.Payment.Metadata, viaGeneral.Key.Fingerprint = viaLane.Payment.Metadata, viaLane.Key.Fingerprint
			if ok, err := s.ClaimDeposit(ctx, viaLane); !ok || err != nil {
				t.Fatalf("lane claim: %v %v", ok, err)
			}
			if !claimGeneral(t, g, viaGeneral) {
				t.Fatal("general claim refused")
			}
			// In flight, both keys read back alike.
			lk, gk := keyRecord(t, s, viaLane.Key.Caller, viaLane.Key.Key), keyRecord(t, s, viaGeneral.Key.Caller, viaGeneral.Key.Key)
			if lk.State != idempotency.InFlight || gk.State != idempotency.InFlight || lk.Method != gk.Method || lk.Fingerprint != gk.Fingerprint ||
				lk.ObjectID != viaLane.Payment.ID || gk.ObjectID != viaGeneral.Payment.ID {
				t.Fatalf("in-flight keys: lane %+v, general %+v", lk, gk)
			}
			lp, err := s.GetPayment(ctx, viaLane.Payment.ID)
			if err != nil {
				t.Fatal(err)
			}
			gp, err := s.GetPayment(ctx, viaGeneral.Payment.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(paytest.Normalized(lp), paytest.Normalized(gp)) {
				t.Fatalf("claimed: lane %+v\ngeneral %+v", lp, gp)
			}

			if ok, err := s.ApplyVerdict(ctx, laneVerdict(s, viaLane, approve)); !ok || err != nil {
				t.Fatalf("lane verdict: %v %v", ok, err)
			}
			if err := settleGeneral(g, laneVerdict(g, viaGeneral, approve)); err != nil {
				t.Fatal(err)
			}
			if lp, err = s.GetPayment(ctx, viaLane.Payment.ID); err != nil {
				t.Fatal(err)
			}
			if gp, err = s.GetPayment(ctx, viaGeneral.Payment.ID); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(paytest.Normalized(lp), paytest.Normalized(gp)) {
				t.Fatalf("captured %v: lane %+v\ngeneral %+v", approve, lp, gp)
			}
			lk, gk = keyRecord(t, s, viaLane.Key.Caller, viaLane.Key.Key), keyRecord(t, s, viaGeneral.Key.Caller, viaGeneral.Key.Key)
			var lr, gr domain.Payment
			if err := json.Unmarshal(lk.Response, &lr); err != nil {
				t.Fatalf("lane's saved result %q: %v", lk.Response, err)
			}
			if err := json.Unmarshal(gk.Response, &gr); err != nil {
				t.Fatalf("general path's saved result %q: %v", gk.Response, err)
			}
			if lk.State != idempotency.Done || gk.State != idempotency.Done || !reflect.DeepEqual(paytest.Normalized(lr), paytest.Normalized(gr)) {
				t.Fatalf("captured %v: saved results: lane (%s) %+v\ngeneral (%s) %+v", approve, lk.State, lr, gk.State, gr)
			}
			if !reflect.DeepEqual(lr, lp) || !reflect.DeepEqual(gr, gp) {
				t.Fatalf("captured %v: a saved result is not the stored payment:\nlane %+v\nstored %+v\ngeneral %+v\nstored %+v", approve, lr, lp, gr, gp)
			}
			lt, le, lo := ledgerOf(t, s, viaLane.Payment.ID)
			gt, ge, gob := ledgerOf(t, s, viaGeneral.Payment.ID)
			if lt != gt || le != ge || lo != gob {
				t.Fatalf("captured %v: lane wrote %d/%d/%d ledger transactions/entries/outbox rows, general %d/%d/%d", approve, lt, le, lo, gt, ge, gob)
			}
		}
		// The two captures' ledger transactions are alike.
		lts, err := s.LedgerTransactions(ctx, "", 0, 100)
		if err != nil || len(lts) != 2 {
			t.Fatalf("ledger transactions %+v, %v; want 2", lts, err)
		}
		for _, lt := range lts {
			slices.SortFunc(lt.Entries, func(a, b ledger.Entry) int { return cmp.Compare(a.Account, b.Account) })
		}
		if len(lts[0].Entries) != 2 || lts[0].Kind != lts[1].Kind || !reflect.DeepEqual(lts[0].Entries, lts[1].Entries) {
			t.Fatalf("lane and general ledger transactions differ: %+v", lts)
		}
	})
}
