package engine

import (
	"testing"

	"github.com/bourse-dev/bourse/pkg/errs"
)

var stream1 = StreamID{Owner: "matching", Shard: 0, Epoch: 0xe1}

// ownedOrder is an order checked on behalf of shard 0 of "matching" in session 7, generation gen.
func ownedOrder(t testing.TB, e *Engine, acct string, side Side, price, qty int64, gen uint64) OrderCheck {
	t.Helper()
	ref, err := e.Owner("matching", 0)
	must(t, err)
	c := order(acct, side, price, qty)
	c.Owner, c.Session, c.Generation = ref, 7, gen
	return c
}

func tradeItem(seq uint64, buyer, seller string, buyRes, sellRes uint64, price, qty int64, taker Side) SettlementItem {
	return SettlementItem{Seq: seq, Trade: &Trade{Symbol: btcUSD, Price: price, Qty: qty, TakerSide: taker,
		Buyer: Leg{buyer, buyRes}, Seller: Leg{seller, sellRes}, Time: t0}}
}

// record keeps every event persisted, to replay them into a fresh engine (a restart).
type record struct{ events []Event }

func (r *record) persist(ev Event) error { r.events = append(r.events, ev); return nil }

func (r *record) restart(t testing.TB) *Engine {
	t.Helper()
	e, err := New(Config{})
	must(t, err)
	for _, ev := range r.events {
		must(t, e.Apply(ev))
	}
	return e
}

func newRecordedFixture(t testing.TB) (*Engine, *record) {
	t.Helper()
	rec := &record{}
	e, err := New(Config{})
	must(t, err)
	must(t, e.DefineAsset(Asset{ID: "USD", Scale: 2}, rec.persist))
	must(t, e.DefineAsset(Asset{ID: "BTC", Scale: 8}, rec.persist))
	must(t, e.DefineSymbol(SymbolSpec{ID: btcUSD, Base: "BTC", Quote: "USD", PriceScale: 2, QtyScale: 0,
		TakerFeePPM: feePPM, ReferencePrice: refPrice}, rec.persist))
	for _, a := range []struct {
		id       string
		usd, btc int64
	}{{"alice", 1_000_000, 0}, {"bob", 0, 10}} {
		must(t, e.OpenAccount(AccountSpec{ID: a.id}, rec.persist))
		if a.usd > 0 {
			_, err := e.Credit(Transfer{Account: a.id, Asset: "USD", Amount: a.usd, Ref: a.id + "-usd"}, rec.persist)
			must(t, err)
		}
		if a.btc > 0 {
			_, err := e.Credit(Transfer{Account: a.id, Asset: "BTC", Amount: a.btc * btcPerLot, Ref: a.id + "-btc"}, rec.persist)
			must(t, err)
		}
	}
	return e, rec
}

func mustConsistent(t testing.TB, e *Engine) Audit {
	t.Helper()
	a := e.Audit()
	if a.Problem != "" {
		t.Fatalf("audit: %s", a.Problem)
	}
	return a
}

func TestSettleAppliesEachPositionOnceWhateverTheBatching(t *testing.T) {
	e := newFixture(t, Config{})
	fund(t, e, "alice", 1_000_000, 0)
	fund(t, e, "bob", 0, 10)
	buy := mustAccept(t, e, order("alice", SideBuy, 10_000, 10))
	sell := mustAccept(t, e, order("bob", SideSell, 10_000, 10))

	first := SettleBatch{Stream: stream1, After: 0, Through: 3, Items: []SettlementItem{tradeItem(3, "alice", "bob", buy, sell, 10_000, 4, SideBuy)}}
	res, err := e.Settle(first, nil)
	must(t, err)
	if res.Applied != 1 || res.Watermark != 3 || res.Unreserved != 0 {
		t.Fatalf("first part: %+v", res)
	}
	// The same part again (a retry after a lost answer) changes nothing.
	res, err = e.Settle(first, nil)
	must(t, err)
	if res.Applied != 0 || res.Skipped != 1 || res.Watermark != 3 {
		t.Fatalf("repeated part: %+v", res)
	}
	// A differently batched resend overlapping the applied part applies only what is new.
	res, err = e.Settle(SettleBatch{Stream: stream1, After: 0, Through: 5, Items: []SettlementItem{
		tradeItem(3, "alice", "bob", buy, sell, 10_000, 4, SideBuy),
		tradeItem(5, "alice", "bob", buy, sell, 10_000, 6, SideSell),
		{Seq: 5, Release: buy}, {Seq: 5, Release: sell},
	}}, nil)
	must(t, err)
	if res.Applied != 3 || res.Skipped != 1 || res.Watermark != 5 {
		t.Fatalf("overlapping part: %+v", res)
	}
	alice, bob := view(t, e, "alice"), view(t, e, "bob")
	// alice bought 10 at 100.00 and paid the taker fee (0.1%) on the first 4 only.
	if b := balanceOf(alice, "USD"); b.Total != 1_000_000-100_000-40 || b.Reserved != 0 {
		t.Fatalf("alice USD %+v", b)
	}
	if b := balanceOf(bob, "USD"); b.Total != 100_000-60 {
		t.Fatalf("bob USD %+v (the seller was the taker of the second trade)", b)
	}
	if b := balanceOf(bob, "BTC"); b.Total != 0 || b.Reserved != 0 {
		t.Fatalf("bob BTC %+v", b)
	}
	if len(alice.Reservations)+len(bob.Reservations) != 0 {
		t.Fatalf("reservations left: %+v %+v", alice.Reservations, bob.Reservations)
	}
	mustConsistent(t, e)
}

func TestSettleRefusesAGapAndAppliesNothingOfAFailedPart(t *testing.T) {
	e := newFixture(t, Config{})
	fund(t, e, "alice", 1_000_000, 0)
	fund(t, e, "bob", 0, 10)
	buy := mustAccept(t, e, order("alice", SideBuy, 10_000, 10))
	sell := mustAccept(t, e, order("bob", SideSell, 10_000, 10))

	_, err := e.Settle(SettleBatch{Stream: stream1, After: 2, Through: 3, Items: []SettlementItem{tradeItem(3, "alice", "bob", buy, sell, 10_000, 1, SideBuy)}}, nil)
	if errs.KindOf(err) != errs.KindFailedPrecondition {
		t.Fatalf("gap: err = %v, want FailedPrecondition", err)
	}
	// The second trade names an account risk does not know: neither trade applies, the stream stays.
	_, err = e.Settle(SettleBatch{Stream: stream1, After: 0, Through: 2, Items: []SettlementItem{
		tradeItem(1, "alice", "bob", buy, sell, 10_000, 1, SideBuy),
		tradeItem(2, "alice", "carol", buy, 99, 10_000, 1, SideBuy),
	}}, nil)
	if errs.KindOf(err) != errs.KindNotFound {
		t.Fatalf("unknown account: err = %v, want NotFound", err)
	}
	if wm := e.Watermark(stream1); wm != 0 {
		t.Fatalf("watermark %d after a refused part", wm)
	}
	if b := balanceOf(view(t, e, "alice"), "BTC"); b.Total != 0 {
		t.Fatalf("one leg applied: alice BTC %+v", b)
	}
	if b := balanceOf(view(t, e, "bob"), "BTC"); b.Total != 10*btcPerLot {
		t.Fatalf("one leg applied: bob BTC %+v", b)
	}
	mustConsistent(t, e)
}

func TestSettleChargesTheCurrentFeeRate(t *testing.T) {
	e := newFixture(t, Config{})
	fund(t, e, "alice", 1_000_000, 0)
	fund(t, e, "bob", 0, 10)
	buy := mustAccept(t, e, order("alice", SideBuy, 10_000, 10))
	sell := mustAccept(t, e, order("bob", SideSell, 10_000, 10))
	must(t, e.DefineSymbol(SymbolSpec{ID: btcUSD, Base: "BTC", Quote: "USD", PriceScale: 2, QtyScale: 0,
		TakerFeePPM: 2_000, ReferencePrice: refPrice}, nil))
	_, err := e.Settle(SettleBatch{Stream: stream1, Through: 1, Items: []SettlementItem{tradeItem(1, "alice", "bob", buy, sell, 10_000, 10, SideBuy)}}, nil)
	must(t, err)
	// 0.2% of 100,000: the 100 reserved at 0.1% plus 100 from the free balance.
	if b := balanceOf(view(t, e, "fees"), "USD"); b.Total != 200 {
		t.Fatalf("fee %+v, want 200 at the new rate", b)
	}
	mustConsistent(t, e)
}

// Scenario 1 at the engine: a buy for 10 rests, 4 fill, the settlement is not sent, risk restarts.
// The sync of the buy's remaining 6 is refused until the fill is settled; the fill then takes its
// funds from the free balance and the sync reserves exactly the rest: nothing counted twice.
func TestJointRestartSettlesBeforeRestoringAndCreatesNothing(t *testing.T) {
	e, rec := newRecordedFixture(t)
	buy := mustAccept(t, e, ownedOrder(t, e, "alice", SideBuy, 10_000, 10, 1))
	sell := mustAccept(t, e, ownedOrder(t, e, "bob", SideSell, 10_000, 4, 1))

	e = rec.restart(t) // every reservation is gone
	open := []RestoredReservation{{ID: buy, Account: "alice", Symbol: btcUSD, Side: SideBuy, Price: 10_000, Qty: 6}}
	_, err := e.SyncReservations(SyncBatch{Stream: stream1, Watermark: 7, Session: 8, Generation: 1, Reservations: open, Final: true})
	if errs.KindOf(err) != errs.KindFailedPrecondition {
		t.Fatalf("sync ahead of the settled position: err = %v, want FailedPrecondition", err)
	}
	res, err := e.Settle(SettleBatch{Stream: stream1, Through: 7, Items: []SettlementItem{
		tradeItem(7, "alice", "bob", buy, sell, 10_000, 4, SideSell), {Seq: 7, Release: sell}}}, rec.persist)
	must(t, err)
	if res.Unreserved != 2 {
		t.Fatalf("settle after restart: %+v, want both legs unreserved", res)
	}
	sr, err := e.SyncReservations(SyncBatch{Stream: stream1, Watermark: 7, Session: 8, Generation: 1, Reservations: open, Final: true})
	must(t, err)
	if sr.Restored != 1 || len(sr.Uncovered) != 0 {
		t.Fatalf("sync: %+v", sr)
	}
	alice, bob := view(t, e, "alice"), view(t, e, "bob")
	if b := balanceOf(alice, "BTC"); b.Total != 4*btcPerLot {
		t.Fatalf("alice BTC %+v", b)
	}
	if b := balanceOf(alice, "USD"); b.Total != 1_000_000-40_000 || b.Reserved != 60_060 {
		t.Fatalf("alice USD %+v: want the rest of 6 reserved once", b)
	}
	if b := balanceOf(bob, "BTC"); b.Total != 6*btcPerLot || b.Reserved != 0 {
		t.Fatalf("bob BTC %+v", b)
	}
	a := mustConsistent(t, e)
	for _, as := range a.Assets {
		if as.Asset == "BTC" && as.Total != 10*btcPerLot {
			t.Fatalf("BTC in the system: %d, want %d", as.Total, 10*btcPerLot)
		}
	}
	// And the log replays to the same state, watermark included.
	again := rec.restart(t)
	if again.Watermark(stream1) != 7 || balanceOf(view(t, again, "bob"), "USD").Total != balanceOf(bob, "USD").Total {
		t.Fatalf("replay differs: watermark %d", again.Watermark(stream1))
	}
}

// Scenarios 2 and 7: a sync is allowed after orders were checked, replaces the owner's
// reservations by the named set (dropping orphans of timed-out checks), keeps reservations of
// newer checks and of nobody, and trims a partially filled order's reservation to what its rest needs.
func TestSyncReplacesTheOwnersReservations(t *testing.T) {
	e := newFixture(t, Config{})
	fund(t, e, "alice", 10_000_000, 0)
	kept := mustAccept(t, e, ownedOrder(t, e, "alice", SideBuy, 10_000, 10, 3))
	orphan := mustAccept(t, e, ownedOrder(t, e, "alice", SideBuy, 10_000, 5, 3)) // its answer was lost
	newer := mustAccept(t, e, ownedOrder(t, e, "alice", SideBuy, 10_000, 2, 4))  // checked during the sync
	nobodys := mustAccept(t, e, order("alice", SideBuy, 10_000, 1))              // an account's own check
	other, err := e.Owner("matching", 1)                                         // another shard
	must(t, err)
	c := order("alice", SideBuy, 10_000, 3)
	c.Owner, c.Session, c.Generation = other, 7, 1
	otherShard := mustAccept(t, e, c)

	res, err := e.SyncReservations(SyncBatch{Stream: stream1, Session: 7, Generation: 3, Final: true,
		Reservations: []RestoredReservation{{ID: kept, Account: "alice", Symbol: btcUSD, Side: SideBuy, Price: 10_000, Qty: 6}}})
	must(t, err)
	if res.Restored != 1 || res.Dropped != 1 {
		t.Fatalf("sync: %+v, want 1 restored and the orphan dropped", res)
	}
	got := map[uint64]int64{}
	for _, r := range view(t, e, "alice").Reservations {
		got[r.ID] = r.Qty
	}
	want := map[uint64]int64{kept: 6, newer: 2, nobodys: 1, otherShard: 3}
	if len(got) != len(want) {
		t.Fatalf("reservations %v, want %v (orphan %d dropped)", got, want, orphan)
	}
	for id, q := range want {
		if got[id] != q {
			t.Fatalf("reservations %v, want %v", got, want)
		}
	}
	// 6 + 2 + 1 + 3 lots at 100.00 with the fee rounded up on each.
	if b := balanceOf(view(t, e, "alice"), "USD"); b.Reserved != 60_060+20_020+10_010+30_030 {
		t.Fatalf("alice reserved %d", b.Reserved)
	}
	mustConsistent(t, e)

	// A second sync of the same generation (a retry of a failed one) is harmless.
	res, err = e.SyncReservations(SyncBatch{Stream: stream1, Session: 7, Generation: 3, Final: true,
		Reservations: []RestoredReservation{{ID: kept, Account: "alice", Symbol: btcUSD, Side: SideBuy, Price: 10_000, Qty: 6}}})
	must(t, err)
	if res.Restored != 1 || res.Dropped != 0 {
		t.Fatalf("repeated sync: %+v", res)
	}
	// A new session (the owner restarted) replaces everything of the shard it does not name.
	res, err = e.SyncReservations(SyncBatch{Stream: stream1, Session: 9, Generation: 0, Final: true})
	must(t, err)
	if res.Dropped != 2 {
		t.Fatalf("sync of a new session: %+v, want kept and newer dropped", res)
	}
	mustConsistent(t, e)
}

func TestSyncReportsWhatTheFreeBalanceCannotCover(t *testing.T) {
	e := newFixture(t, Config{})
	fund(t, e, "alice", 50_000, 0)
	res, err := e.SyncReservations(SyncBatch{Stream: stream1, Session: 1, Final: true, Reservations: []RestoredReservation{
		{ID: 5 << idShardBits, Account: "alice", Symbol: btcUSD, Side: SideBuy, Price: 10_000, Qty: 4},
		{ID: 6 << idShardBits, Account: "alice", Symbol: btcUSD, Side: SideBuy, Price: 10_000, Qty: 4},
	}})
	must(t, err)
	if res.Restored != 1 || len(res.Uncovered) != 1 || res.Uncovered[0] != 6<<idShardBits {
		t.Fatalf("sync: %+v", res)
	}
	mustConsistent(t, e)
}

// I2 after an amend down: a shrink frees exactly the lots the order no longer needs, whatever its
// order relative to a fill of the same reservation in the part.
func TestSettleShrinkKeepsWhatTheRestNeeds(t *testing.T) {
	for _, shrinkFirst := range []bool{true, false} {
		e := newFixture(t, Config{})
		fund(t, e, "alice", 1_000_000, 0)
		fund(t, e, "bob", 0, 10)
		buy := mustAccept(t, e, order("alice", SideBuy, 10_000, 10))
		sell := mustAccept(t, e, order("bob", SideSell, 10_000, 2))
		shrink := SettlementItem{Seq: 1, Shrink: &Shrink{ReservationID: buy, Qty: 5}}
		fill := tradeItem(2, "alice", "bob", buy, sell, 10_000, 2, SideSell)
		items := []SettlementItem{shrink, fill}
		if !shrinkFirst {
			shrink.Seq, fill.Seq = 2, 1
			items = []SettlementItem{fill, shrink}
		}
		_, err := e.Settle(SettleBatch{Stream: stream1, Through: 2, Items: items}, nil)
		must(t, err)
		alice := view(t, e, "alice")
		if r := alice.Reservations; len(r) != 1 || r[0].Qty != 3 || r[0].Amount != 30_030 {
			t.Fatalf("shrink first %v: reservations %+v, want 3 lots left", shrinkFirst, r)
		}
		if p := positionOf(alice, btcUSD); p.OpenBuyQty != 3 {
			t.Fatalf("open buy %d, want 3", p.OpenBuyQty)
		}
		mustConsistent(t, e)
	}
}

// Issue 10: an amend that reprices replaces the reservation in one step, so an account using all
// its funds can still reprice; a refused replacement leaves the old reservation as it was.
func TestCheckReplacesAReservationAtomically(t *testing.T) {
	e := newFixture(t, Config{})
	fund(t, e, "alice", 100_100, 0) // exactly 10 lots at 100.00 with the fee
	old := mustAccept(t, e, order("alice", SideBuy, 10_000, 10))
	c := order("alice", SideBuy, 9_900, 10)
	if _, r := e.CheckOrder(c); r != RejectInsufficientFunds {
		t.Fatalf("without replacing: %v, want insufficient funds", r)
	}
	c.Replaces = old
	repl := mustAccept(t, e, c)
	if r := view(t, e, "alice").Reservations; len(r) != 1 || r[0].ID != repl || r[0].Price != 9_900 {
		t.Fatalf("reservations %+v, want only the replacement", r)
	}
	big := order("alice", SideBuy, 20_000, 10)
	big.Replaces = repl
	if _, r := e.CheckOrder(big); r != RejectInsufficientFunds {
		t.Fatalf("too big a replacement: %v", r)
	}
	if r := view(t, e, "alice").Reservations; len(r) != 1 || r[0].ID != repl || r[0].Qty != 10 {
		t.Fatalf("a refused replacement changed the reservation: %+v", r)
	}
	if err := e.Release(repl); err != nil {
		t.Fatalf("the kept reservation is not releasable: %v", err)
	}
	mustConsistent(t, e)
}

func TestHaltedListsTheKillSwitches(t *testing.T) {
	e := newFixture(t, Config{})
	fund(t, e, "alice", 1, 0)
	fund(t, e, "bob", 1, 0)
	must(t, e.SetTradingState(TradingStateChange{Account: "bob", State: TradingHalted}, nil))
	if all, accts := e.Halted(10); all || len(accts) != 1 || accts[0] != "bob" {
		t.Fatalf("halted: %v %v", all, accts)
	}
	must(t, e.SetTradingState(TradingStateChange{State: TradingHalted}, nil))
	if all, _ := e.Halted(10); !all {
		t.Fatal("global switch not reported")
	}
}
