package risk_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
	"github.com/bourse-dev/bourse/pkg/sqldb"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// storeDB opens, from the test, the database risk runs on (dbArg as given to startRisk).
func storeDB(t *testing.T, dbArg string) *sqldb.DB {
	t.Helper()
	url, ok := strings.CutPrefix(dbArg, "--database-url=")
	if !ok {
		url = filepath.Join(strings.TrimPrefix(dbArg, "--data-dir="), "risk.db")
	}
	db, err := sqldb.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// failNextEvent makes the database refuse the next event risk writes (a trigger: the same failure
// a full disk or a lost server gives one commit), and returns the function that lifts it.
func failNextEvent(t *testing.T, db *sqldb.DB) (lift func()) {
	t.Helper()
	ctx := context.Background()
	var last uint64
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM risk_events`).Scan(&last); err != nil {
		t.Fatal(err)
	}
	var install, drop []string
	if db.Dialect == sqldb.Postgres {
		install = []string{
			fmt.Sprintf(`CREATE FUNCTION risk_fail_insert() RETURNS trigger AS $$ BEGIN
				IF NEW.seq = %d THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql`, last+1),
			`CREATE TRIGGER risk_fail_insert BEFORE INSERT ON risk_events FOR EACH ROW EXECUTE FUNCTION risk_fail_insert()`,
		}
		drop = []string{`DROP TRIGGER risk_fail_insert ON risk_events`, `DROP FUNCTION risk_fail_insert()`}
	} else {
		install = []string{fmt.Sprintf(`CREATE TRIGGER risk_fail_insert BEFORE INSERT ON risk_events WHEN NEW.seq = %d
			BEGIN SELECT RAISE(ABORT, 'injected failure'); END`, last+1)}
		drop = []string{`DROP TRIGGER risk_fail_insert`}
	}
	for _, q := range install {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	return func() {
		for _, q := range drop {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestFailStopRestartAndReservationIDs runs the real binary: a failed commit makes risk exit at once
// and non-zero; the restart replays cleanly and applies the client's retry once (it was never
// durable, so it is not a duplicate); reservation ids issued after the restart are new, and a stale
// release of an old one frees nothing; a clean stop leaves a snapshot, so the next start replays
// no events.
func TestFailStopRestartAndReservationIDs(t *testing.T) {
	eachStore(t, func(t *testing.T, dbArg string) {
		agent := testenv.StartConsul(t)
		p := startRisk(t, agent, dbArg)
		setup(t, p)
		ctx := context.Background()
		must[*riskv1.CreditResponse](t)(p.admin.Credit(ctx, &riskv1.CreditRequest{AccountId: "alice", AssetId: "USD", Amount: "100000", Ref: "dep-1"}))
		order := &riskv1.CheckOrderRequest{AccountId: "alice", Symbol: "BTC-USD", Side: riskv1.Side_SIDE_BUY,
			Type: riskv1.OrderType_ORDER_TYPE_LIMIT, Price: "100", Quantity: "1"}
		old := must[*riskv1.CheckOrderResponse](t)(p.admin.CheckOrder(ctx, order))
		if !old.GetAccepted() {
			t.Fatalf("check: %v", old)
		}

		db := storeDB(t, dbArg)
		lift := failNextEvent(t, db)
		retry := &riskv1.CreditRequest{AccountId: "alice", AssetId: "USD", Amount: "5", Ref: "dep-2"}
		_, err := p.admin.Credit(ctx, retry)
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("credit whose commit fails: %v, want Unavailable", err)
		}
		if !p.WaitExit(5 * time.Second) {
			t.Fatal("risk still runs after a failed commit")
		}
		if p.ExitErr() == nil {
			t.Fatal("risk exited 0 after a failed commit")
		}
		lift()

		p = startRisk(t, agent, dbArg)
		res := must[*riskv1.CreditResponse](t)(p.admin.Credit(ctx, retry))
		if res.GetDuplicate() || res.GetBalance() != "100005" {
			t.Fatalf("retry after restart: %v, want applied once (balance 100005)", res)
		}
		fresh := must[*riskv1.CheckOrderResponse](t)(p.admin.CheckOrder(ctx, order))
		if !fresh.GetAccepted() || fresh.GetReservationId() <= old.GetReservationId() {
			t.Fatalf("id after restart %d, before %d: must be new and above", fresh.GetReservationId(), old.GetReservationId())
		}
		if _, err := p.admin.ReleaseReservation(ctx, &riskv1.ReleaseReservationRequest{ReservationId: old.GetReservationId()}); status.Code(err) != codes.NotFound {
			t.Fatalf("stale release of id %d: %v, want NotFound", old.GetReservationId(), err)
		}
		alice := must[*riskv1.GetAccountResponse](t)(p.admin.GetAccount(ctx, &riskv1.GetAccountRequest{AccountId: "alice"})).GetAccount()
		if b := balance(t, alice, "USD"); b.GetReserved() != "100.1" {
			t.Fatalf("after a stale release alice has %v reserved, want the new order's 100.1", b.GetReserved())
		}

		p.stop(t)
		var events, snapshots int
		if err := db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM risk_events), (SELECT COUNT(*) FROM risk_snapshots)`).Scan(&events, &snapshots); err != nil {
			t.Fatal(err)
		}
		if events != 0 || snapshots != 1 {
			t.Fatalf("after a clean stop: %d events, %d snapshots; want a snapshot of everything", events, snapshots)
		}
		p = startRisk(t, agent, dbArg)
		if !p.LogContains("events_replayed=0") && !p.LogContains(`"events_replayed":0`) {
			t.Fatalf("start after the snapshot replayed events:\n%s", p.Log())
		}
		if again := must[*riskv1.CreditResponse](t)(p.admin.Credit(ctx, retry)); !again.GetDuplicate() || again.GetBalance() != "100005" {
			t.Fatalf("the snapshot lost a transfer: %v", again)
		}
	})
}
