package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bourse-dev/bourse/pkg/sqldb"
	"github.com/bourse-dev/bourse/services/risk/internal/engine"
	"github.com/bourse-dev/bourse/services/risk/internal/store"
)

func countEvents(t *testing.T, url string) (n, minSeq int64) {
	t.Helper()
	db, err := sqldb.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`SELECT COUNT(*), COALESCE(MIN(seq), 0) FROM risk_events`).Scan(&n, &minSeq); err != nil {
		t.Fatal(err)
	}
	return n, minSeq
}

// TestSnapshotBoundsReplay: after a snapshot the events it covers are pruned, and a restart loads
// it and replays only the events after it, into the same state; a snapshot is never written behind
// a failed commit; a corrupt stored snapshot stops the start with a clear error.
func TestSnapshotBoundsReplay(t *testing.T) {
	eachStore(t, func(t *testing.T, url string) {
		n := start(t, url, store.Options{})
		n.setup(t, "alice", "bob")
		for i := range 50 {
			if _, err := n.credit([]string{"alice", "bob"}[i%2], fmt.Sprintf("a%d", i), int64(i+1)); err != nil {
				t.Fatal(err)
			}
		}
		seq, err := n.st.Snapshot(context.Background(), n.eng)
		if err != nil {
			t.Fatal(err)
		}
		if seq != n.eng.LastSeq() {
			t.Fatalf("snapshot at %d, engine at %d", seq, n.eng.LastSeq())
		}
		if rows, _ := countEvents(t, url); rows != 0 {
			t.Fatalf("%d events left after a snapshot of all of them", rows)
		}
		for i := range 7 {
			if _, err := n.credit("alice", fmt.Sprintf("b%d", i), 1000); err != nil {
				t.Fatal(err)
			}
		}
		want := []engine.BalanceView{usd(t, n.eng, "alice"), usd(t, n.eng, "bob")}
		n.st.Close()

		n = start(t, url, store.Options{})
		if n.replayed != 7 || n.eng.LastSeq() != seq+7 {
			t.Fatalf("restart replayed %d events up to %d, want the 7 after the snapshot at %d", n.replayed, n.eng.LastSeq(), seq)
		}
		got := []engine.BalanceView{usd(t, n.eng, "alice"), usd(t, n.eng, "bob")}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("after restart %v, want %v", got, want)
		}
		if res, err := n.credit("alice", "a0", 1); err != nil || !res.Duplicate {
			t.Fatalf("a transfer inside the snapshot is forgotten: %+v, %v", res, err)
		}

		// No snapshot behind a failed commit: it would hold the lost event.
		remove := failInsertOf(t, url, n.eng.LastSeq()+1)
		expectUnavailable(t, "credit", func() error { _, err := n.credit("bob", "lost", 5); return err }())
		if _, err := n.st.Snapshot(context.Background(), n.eng); err == nil {
			t.Fatal("snapshot written after a failed commit")
		}
		n.st.Close()
		remove()
		n = start(t, url, store.Options{})
		if b := usd(t, n.eng, "bob"); b.Total != want[1].Total {
			t.Fatalf("bob holds %d after the lost credit, want %d", b.Total, want[1].Total)
		}
		n.st.Close()

		db, err := sqldb.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(`UPDATE risk_snapshots SET data = SUBSTR(data, 1, 200)`); err != nil {
			t.Fatal(err)
		}
		st, err := store.Open(context.Background(), url, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		eng, err := engine.New(engine.Config{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Load(context.Background(), eng); err == nil || !strings.Contains(err.Error(), "truncated") {
			t.Fatalf("start over a truncated snapshot: %v", err)
		}
	})
}

// BenchmarkRestart measures a restart (open, load, replay) over 1M events in SQLite: from the log
// alone, and from a snapshot of the same state with no events after it. Two histories: credits with
// a fresh ref each (the idempotency records make the state grow with the history) and limit changes
// (the state stays the same size). Setting up writes each log once (about a minute); run it with
// -benchtime=1x.
func BenchmarkRestart(b *testing.B) {
	const accounts, events = 1000, 1_000_000
	histories := []struct {
		name  string
		event func(eng *engine.Engine, i int, p engine.PersistFunc) error
	}{
		{"credits", func(eng *engine.Engine, i int, p engine.PersistFunc) error {
			_, err := eng.Credit(engine.Transfer{Account: fmt.Sprintf("acct%d", i%accounts), Asset: "USD", Amount: 1, Ref: fmt.Sprintf("dep-%d", i)}, p)
			return err
		}},
		{"limits", func(eng *engine.Engine, i int, p engine.PersistFunc) error {
			return eng.SetLimits(engine.LimitsChange{Account: fmt.Sprintf("acct%d", i%accounts), Limits: engine.Limits{MaxOrderNotional: int64(i + 1)}}, p)
		}},
	}
	ctx := context.Background()
	for _, h := range histories {
		dir := b.TempDir()
		logURL, snapURL := filepath.Join(dir, "log.db"), filepath.Join(dir, "snap.db")
		for _, url := range []string{logURL, snapURL} {
			st, err := store.Open(ctx, url, store.Options{})
			if err != nil {
				b.Fatal(err)
			}
			eng, _ := engine.New(engine.Config{})
			p := st.NewPersister(ctx)
			must := func(err error) {
				if err != nil {
					b.Fatal(err)
				}
			}
			must(eng.DefineAsset(engine.Asset{ID: "USD", Scale: 2}, p.Persist))
			for a := range accounts {
				must(eng.OpenAccount(engine.AccountSpec{ID: fmt.Sprintf("acct%d", a)}, p.Persist))
			}
			for i := int(eng.LastSeq()); i < events; i++ {
				must(h.event(eng, i, p.Persist))
				if i%10_000 == 0 {
					must(p.Wait())
					p = st.NewPersister(ctx)
				}
			}
			must(p.Wait())
			if url == snapURL {
				if _, err := st.Snapshot(ctx, eng); err != nil {
					b.Fatal(err)
				}
			}
			st.Close()
		}
		for _, c := range []struct{ name, url string }{{"log", logURL}, {"snapshot", snapURL}} {
			b.Run(h.name+"/"+c.name, func(b *testing.B) {
				for b.Loop() {
					st, err := store.Open(ctx, c.url, store.Options{})
					if err != nil {
						b.Fatal(err)
					}
					eng, _ := engine.New(engine.Config{})
					if _, err := st.Load(ctx, eng); err != nil {
						b.Fatal(err)
					}
					if eng.LastSeq() != events {
						b.Fatalf("rebuilt %d events", eng.LastSeq())
					}
					st.Close()
				}
			})
		}
	}
}

// failSnapshots makes the database refuse every snapshot, through a connection of its own, and
// returns the function that removes the refusal.
func failSnapshots(t *testing.T, url string) (remove func()) {
	t.Helper()
	ctx := context.Background()
	db, err := sqldb.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	install := []string{`CREATE TRIGGER risk_fail_snapshot BEFORE INSERT ON risk_snapshots
		BEGIN SELECT RAISE(ABORT, 'injected failure of a snapshot'); END`}
	drop := []string{`DROP TRIGGER risk_fail_snapshot`}
	if db.Dialect == sqldb.Postgres {
		install = []string{
			`CREATE FUNCTION risk_fail_snapshot() RETURNS trigger AS $$ BEGIN
				RAISE EXCEPTION 'injected failure of a snapshot'; END $$ LANGUAGE plpgsql`,
			`CREATE TRIGGER risk_fail_snapshot BEFORE INSERT ON risk_snapshots FOR EACH ROW EXECUTE FUNCTION risk_fail_snapshot()`,
		}
		drop = []string{`DROP TRIGGER risk_fail_snapshot ON risk_snapshots`, `DROP FUNCTION risk_fail_snapshot()`}
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

// TestFailedSnapshotIsNotFatal: a snapshot the database refuses fails alone. The credits written
// meanwhile all commit (none shared its transaction), the store does not stop, its events stay in
// the log, and the next snapshot succeeds and bounds the replay as usual.
func TestFailedSnapshotIsNotFatal(t *testing.T) {
	eachStore(t, func(t *testing.T, url string) {
		n := start(t, url, store.Options{})
		n.setup(t, "alice", "bob")
		remove := failSnapshots(t, url)
		const writers, each = 4, 25
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					if _, err := n.credit([]string{"alice", "bob"}[w%2], fmt.Sprintf("w%d-%d", w, i), 1); err != nil {
						t.Errorf("a credit beside the failing snapshots: %v", err)
						return
					}
				}
			})
		}
		for range 5 {
			if _, err := n.st.Snapshot(context.Background(), n.eng); err == nil || !strings.Contains(err.Error(), "injected failure of a snapshot") {
				t.Fatalf("snapshot under the refusal: %v", err)
			}
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		select {
		case err := <-n.failed:
			t.Fatalf("OnFail after a failed snapshot: %v", err)
		default:
		}
		if err := n.st.Err(); err != nil {
			t.Fatalf("the store stopped after a failed snapshot: %v", err)
		}
		if rows, _ := countEvents(t, url); rows != int64(n.eng.LastSeq()) {
			t.Fatalf("%d events stored, want all %d: a failed snapshot pruned some", rows, n.eng.LastSeq())
		}
		remove()
		seq, err := n.st.Snapshot(context.Background(), n.eng)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.credit("alice", "after", 1); err != nil {
			t.Fatal(err)
		}
		want := []engine.BalanceView{usd(t, n.eng, "alice"), usd(t, n.eng, "bob")}
		n.st.Close()

		n = start(t, url, store.Options{})
		defer n.st.Close()
		if n.replayed != 1 || n.eng.LastSeq() != seq+1 {
			t.Fatalf("restart replayed %d events up to %d, want the one after the snapshot at %d", n.replayed, n.eng.LastSeq(), seq)
		}
		if got := []engine.BalanceView{usd(t, n.eng, "alice"), usd(t, n.eng, "bob")}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("after restart %v, want %v", got, want)
		}
		if want[0].Total+want[1].Total != writers*each+1 {
			t.Fatalf("balances %v after %d credits of 1", want, writers*each+1)
		}
	})
}
