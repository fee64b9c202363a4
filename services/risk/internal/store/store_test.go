package store_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/pkg/sqldb"
	"github.com/bourse-dev/bourse/pkg/testenv"
	"github.com/bourse-dev/bourse/services/risk/internal/engine"
	"github.com/bourse-dev/bourse/services/risk/internal/store"
)

// eachStore runs fn on a fresh SQLite file and a fresh PostgreSQL database.
func eachStore(t *testing.T, fn func(t *testing.T, url string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, filepath.Join(t.TempDir(), "risk.db")) })
	t.Run("postgres", func(t *testing.T) {
		if testing.Short() {
			t.Skip("PostgreSQL is started only in the full suite")
		}
		fn(t, testenv.StartPostgres(t))
	})
}

// failInsertOf makes the database itself refuse to store event seq, with a trigger installed
// through a connection of its own, as a full disk or a lost server would fail one commit while the
// next could succeed. It returns the function that removes the trigger.
func failInsertOf(t *testing.T, url string, seq uint64) (remove func()) {
	t.Helper()
	ctx := context.Background()
	db, err := sqldb.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var install, drop []string
	if db.Dialect == sqldb.Postgres {
		install = []string{
			fmt.Sprintf(`CREATE FUNCTION risk_fail_insert() RETURNS trigger AS $$ BEGIN
				IF NEW.seq = %d THEN RAISE EXCEPTION 'injected failure of event %d'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql`, seq, seq),
			`CREATE TRIGGER risk_fail_insert BEFORE INSERT ON risk_events FOR EACH ROW EXECUTE FUNCTION risk_fail_insert()`,
		}
		drop = []string{`DROP TRIGGER risk_fail_insert ON risk_events`, `DROP FUNCTION risk_fail_insert()`}
	} else {
		install = []string{fmt.Sprintf(`CREATE TRIGGER risk_fail_insert BEFORE INSERT ON risk_events WHEN NEW.seq = %d
			BEGIN SELECT RAISE(ABORT, 'injected failure of event %d'); END`, seq, seq)}
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

// node is one start of the service as the risk binary builds it: store, incarnation, engine replayed
// from the store.
type node struct {
	st  *store.Store
	eng *engine.Engine
	inc store.Incarnation
	// replayed counts the events replayed after the snapshot at start
	replayed uint64
	failed   chan error // OnFail's calls
}

func start(t *testing.T, url string, opts store.Options) *node {
	t.Helper()
	ctx := context.Background()
	n := &node{failed: make(chan error, 4)}
	opts.OnFail = func(err error) { n.failed <- err }
	var err error
	if n.st, err = store.Open(ctx, url, opts); err != nil {
		t.Fatal(err)
	}
	if n.inc, err = n.st.Start(ctx); err != nil {
		t.Fatal(err)
	}
	n.eng, err = engine.New(engine.Config{Incarnation: n.inc.Number, ReservationIDFloor: n.inc.IDFloor, ReservationIDLimit: n.inc.IDLimit})
	if err != nil {
		t.Fatal(err)
	}
	if n.replayed, err = n.st.Load(ctx, n.eng); err != nil {
		t.Fatalf("restart: %v", err)
	}
	return n
}

// durable runs an engine call the way the API does: persist, then answer once committed.
func durable[R any](n *node, call func(engine.PersistFunc) (R, error)) (R, error) {
	p := n.st.NewPersister(context.Background())
	res, err := call(p.Persist)
	if err != nil {
		return res, err
	}
	if err := p.Wait(); err != nil {
		var zero R
		return zero, err
	}
	return res, nil
}

func (n *node) credit(account, ref string, amount int64) (engine.TransferResult, error) {
	return durable(n, func(p engine.PersistFunc) (engine.TransferResult, error) {
		return n.eng.Credit(engine.Transfer{Account: account, Asset: "USD", Amount: amount, Ref: ref}, p)
	})
}

func (n *node) mustDo(t *testing.T, call func(engine.PersistFunc) error) {
	t.Helper()
	if _, err := durable(n, func(p engine.PersistFunc) (struct{}, error) { return struct{}{}, call(p) }); err != nil {
		t.Fatal(err)
	}
}

func (n *node) setup(t *testing.T, accounts ...string) {
	n.mustDo(t, func(p engine.PersistFunc) error { return n.eng.DefineAsset(engine.Asset{ID: "USD", Scale: 2}, p) })
	n.mustDo(t, func(p engine.PersistFunc) error { return n.eng.DefineAsset(engine.Asset{ID: "BTC", Scale: 8}, p) })
	n.mustDo(t, func(p engine.PersistFunc) error {
		return n.eng.DefineSymbol(engine.SymbolSpec{ID: "BTC-USD", Base: "BTC", Quote: "USD", PriceScale: 2}, p)
	})
	for _, a := range accounts {
		n.mustDo(t, func(p engine.PersistFunc) error { return n.eng.OpenAccount(engine.AccountSpec{ID: a}, p) })
	}
}

func usd(t *testing.T, eng *engine.Engine, account string) engine.BalanceView {
	t.Helper()
	v, err := eng.Account(account)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range v.Balances {
		if b.Asset == "USD" {
			return b
		}
	}
	return engine.BalanceView{Asset: "USD"}
}

func expectUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	if errs.KindOf(err) != errs.KindUnavailable {
		t.Fatalf("%s after a failed commit: %v, want Unavailable", what, err)
	}
}

// TestFailedCommitIsFailStop: once the commit of one event fails, nothing later is committed (no
// hole in the log), applied, or answered from memory, and the next start replays cleanly and
// answers the retry from what is durable.
func TestFailedCommitIsFailStop(t *testing.T) {
	eachStore(t, func(t *testing.T, url string) {
		n := start(t, url, store.Options{})
		n.setup(t, "alice")                                        // events 1-4
		if _, err := n.credit("alice", "dep-1", 100); err != nil { // event 5
			t.Fatal(err)
		}
		remove := failInsertOf(t, url, 6)
		_, err := n.credit("alice", "dep-2", 50) // event 6: its commit fails
		expectUnavailable(t, "the failed credit", err)
		select {
		case <-n.failed:
		case <-time.After(10 * time.Second):
			t.Fatal("OnFail was not called")
		}
		_, err = n.credit("alice", "dep-3", 25) // would be event 7, committed behind the lost 6
		expectUnavailable(t, "a later credit", err)
		res, err := n.credit("alice", "dep-2", 50) // the client's retry
		if err == nil {
			t.Fatalf("the retry of the lost credit was answered from memory: %+v", res)
		}
		expectUnavailable(t, "the retry", err)
		expectUnavailable(t, "Sync", n.st.Sync(context.Background()))
		if got := n.eng.LastSeq(); got != 6 {
			t.Fatalf("engine at event %d after the failure, want 6 (nothing applied after it)", got)
		}
		n.st.Close()
		remove()

		n = start(t, url, store.Options{})
		defer n.st.Close()
		if n.eng.LastSeq() != 5 {
			t.Fatalf("replayed %d events, want the 5 committed", n.eng.LastSeq())
		}
		if b := usd(t, n.eng, "alice"); b.Total != 100 {
			t.Fatalf("after restart alice holds %d, want 100", b.Total)
		}
		res, err = n.credit("alice", "dep-2", 50)
		if err != nil || res.Duplicate || res.Total != 150 {
			t.Fatalf("retry after restart: %+v, %v; want applied once, total 150", res, err)
		}
	})
}

// TestFailStopUnderConcurrency: writers (each sending every credit twice at once) race a commit
// failure; afterwards every acknowledged credit, original or duplicate, is durable and nothing else
// is.
func TestFailStopUnderConcurrency(t *testing.T) {
	eachStore(t, func(t *testing.T, url string) {
		n := start(t, url, store.Options{})
		const writers, each = 8, 40
		accounts := make([]string, writers)
		for w := range accounts {
			accounts[w] = fmt.Sprintf("acct%d", w)
		}
		n.setup(t, accounts...)
		remove := failInsertOf(t, url, n.eng.LastSeq()+100)
		var mu sync.Mutex
		acked := map[string]int64{}
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					// Each credit is sent twice at once, as a client retrying early would: the copy
					// answered "duplicate" from memory must be as durable as the original.
					ref := fmt.Sprintf("w%d-%d", w, i)
					var pair sync.WaitGroup
					for range 2 {
						pair.Go(func() {
							_, err := n.credit(accounts[w], ref, int64(i+1))
							switch {
							case err == nil:
								mu.Lock()
								acked[ref] = int64(i + 1)
								mu.Unlock()
							case errs.KindOf(err) != errs.KindUnavailable:
								t.Errorf("%s: %v", ref, err)
							}
						})
					}
					pair.Wait()
				}
			})
		}
		wg.Wait()
		if len(acked) >= writers*each {
			t.Fatal("the injected failure never happened")
		}
		n.st.Close()
		remove()

		n = start(t, url, store.Options{})
		defer n.st.Close()
		var want int64
		for _, v := range acked {
			want += v
		}
		var got int64
		for _, a := range accounts {
			got += usd(t, n.eng, a).Total
		}
		if got != want {
			t.Fatalf("durable credits sum to %d, acknowledged ones to %d", got, want)
		}
		for ref, amount := range acked {
			w := 0
			fmt.Sscanf(ref, "w%d-", &w)
			res, err := n.credit(accounts[w], ref, amount)
			if err != nil || !res.Duplicate {
				t.Fatalf("acknowledged credit %s is not durable: %+v, %v", ref, res, err)
			}
		}
	})
}

// TestIncarnationsAndReservationIDs: every start is a new incarnation, and reservation ids issued
// after a restart (through the real replay path) never repeat one issued before, even when an
// incarnation uses up several durably reserved ranges; a stale release of an old id frees nothing.
func TestIncarnationsAndReservationIDs(t *testing.T) {
	eachStore(t, func(t *testing.T, url string) {
		const idRange = 1 << 20 // 1024 counter values: four blocks of 256, so ranges run out quickly
		opts := store.Options{IDRange: idRange}
		seen := map[uint64]int{}
		var maxID uint64
		var stale []uint64
		for k := 1; k <= 3; k++ {
			maxPrev := maxID
			n := start(t, url, opts)
			if n.inc.Number != uint64(k) || n.eng.Incarnation() != uint64(k) {
				t.Fatalf("start %d: incarnation %d (engine %d)", k, n.inc.Number, n.eng.Incarnation())
			}
			if k == 1 {
				n.setup(t, "alice", "bob")
				for _, a := range []string{"alice", "bob"} {
					if _, err := n.credit(a, "seed-"+a, 1<<40); err != nil {
						t.Fatal(err)
					}
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			keeper := make(chan struct{})
			go func() {
				defer close(keeper)
				store.KeepReservationIDs(ctx, n.st, n.eng, testLogger(t))
			}()
			for i := range 3000 {
				acct := []string{"alice", "bob"}[i%2]
				id, reject := n.eng.CheckOrder(engine.OrderCheck{Account: acct, Symbol: "BTC-USD", Side: engine.SideBuy,
					Type: engine.OrderLimit, Price: 1, Qty: 1, Now: 1})
				if reject != engine.Accepted {
					t.Fatalf("start %d: order %d: %v", k, i, reject)
				}
				if prev, dup := seen[id]; dup {
					t.Fatalf("start %d reissued id %d of start %d", k, id, prev)
				}
				if id <= n.inc.IDFloor || id <= maxPrev {
					t.Fatalf("start %d: id %d not above the floor %d and every earlier id (max %d)", k, id, n.inc.IDFloor, maxPrev)
				}
				seen[id] = k
				maxID = max(maxID, id)
				if id >= n.eng.ReservationIDLimit() {
					t.Fatalf("id %d at or above the reserved limit %d", id, n.eng.ReservationIDLimit())
				}
			}
			if n.eng.ReservationIDLimit() <= n.inc.IDLimit {
				t.Fatalf("start %d: 3000 ids fit in the first range of %d; the test does not exercise extension", k, idRange)
			}
			before := usd(t, n.eng, "alice")
			for _, id := range stale {
				if err := n.eng.Release(id); errs.KindOf(err) != errs.KindNotFound {
					t.Fatalf("start %d: stale release of id %d: %v, want NotFound", k, id, err)
				}
			}
			if after := usd(t, n.eng, "alice"); after != before {
				t.Fatalf("stale releases changed alice: %+v → %+v", before, after)
			}
			for id, at := range seen {
				if at == k && len(stale) < 200 {
					stale = append(stale, id)
				}
			}
			cancel()
			<-keeper
			n.st.Close()
		}
	})
}

// TestReserveIDsAfterFailureRefuses: after a failed commit no further ids are reserved either.
func TestReserveIDsAfterFailureRefuses(t *testing.T) {
	url := filepath.Join(t.TempDir(), "risk.db")
	n := start(t, url, store.Options{})
	defer n.st.Close()
	n.setup(t, "alice")
	remove := failInsertOf(t, url, n.eng.LastSeq()+1)
	defer remove()
	_, err := n.credit("alice", "x", 1)
	expectUnavailable(t, "credit", err)
	_, err = n.st.ReserveIDs(context.Background(), 1<<50)
	expectUnavailable(t, "ReserveIDs", err)
}

func testLogger(t *testing.T) *slog.Logger { return slog.New(slog.NewTextHandler(t.Output(), nil)) }

// TestFailedReserveIDsStopsTheStore: a reservation of ids the database refuses stops the store like
// a failed commit: OnFail is told, and no event is accepted or committed after it.
func TestFailedReserveIDsStopsTheStore(t *testing.T) {
	url := filepath.Join(t.TempDir(), "risk.db")
	n := start(t, url, store.Options{})
	defer n.st.Close()
	n.setup(t, "alice")
	db, err := sqldb.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TRIGGER risk_fail_reserve BEFORE UPDATE ON risk_incarnations
		BEGIN SELECT RAISE(ABORT, 'injected failure of a reservation'); END`); err != nil {
		t.Fatal(err)
	}
	_, err = n.st.ReserveIDs(context.Background(), n.inc.IDLimit)
	expectUnavailable(t, "ReserveIDs", err)
	select {
	case err := <-n.failed:
		expectUnavailable(t, "OnFail", err)
	case <-time.After(10 * time.Second):
		t.Fatal("OnFail was not called")
	}
	before := n.eng.LastSeq()
	_, err = n.credit("alice", "after", 1)
	expectUnavailable(t, "a credit", err)
	expectUnavailable(t, "Err", n.st.Err())
	if rows, _ := countEvents(t, url); rows != int64(before) {
		t.Fatalf("%d events stored, want the %d before the failed reservation", rows, before)
	}
}
