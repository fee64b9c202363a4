package exchange

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/matching/internal/book"
)

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func fastProbe(c *Config) { c.ProbeEvery = 20 * time.Millisecond }

// synced reports whether every shard has settled its journal and finished re-syncing.
func synced(x *Exchange) bool {
	for _, st := range x.SettlementStatus() {
		if st.SettledSeq < st.JournalSeq || st.Queued > 0 || st.Syncing || st.Halted {
			return false
		}
	}
	return true
}

// crash stops x without letting its reporters drain (they give up at once): what is not yet
// settled stays unsettled, as after a SIGKILL.
func crash(t *testing.T, x *Exchange) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_ = x.Close(ctx)
}

// openOrders maps reservation ids of x's open orders to their remaining quantity: what risk must
// hold (I2).
func openOrders(t *testing.T, x *Exchange) map[uint64]int64 {
	t.Helper()
	out := map[uint64]int64{}
	for _, sh := range x.shards {
		done := make(chan struct{})
		if err := sh.enqueue(command{kind: cmdQuery, query: func(*output) {
			for _, m := range sh.markets {
				for _, o := range m.orders {
					if !o.Status.closed() && o.reservation != 0 {
						out[o.reservation] = o.Remaining
					}
				}
			}
			close(done)
		}}); err != nil {
			t.Fatal(err)
		}
		<-done
	}
	return out
}

func sameReservations(a, b map[uint64]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// I2 after an amend down: the reservation shrinks to what the rest needs.
func TestAmendDownShrinksTheReservation(t *testing.T) {
	risk := newFakeRisk()
	x := openTest(t, t.TempDir(), risk)
	defer closeTest(t, x)
	addSymbol(t, x, "BTC-USD")
	o := submit(t, x, limit("alice", "a", book.Buy, 9000, 10)).Order
	r := call(t, func(d func(Result)) {
		x.Amend(context.Background(), AmendRequest{OrderRef: OrderRef{Account: "alice", Symbol: "BTC-USD", OrderID: o.ID}, Qty: 4}, d)
	})
	if r.Err != nil || r.Order.Remaining != 4 {
		t.Fatalf("amend down: %+v", r)
	}
	waitSettled(t, x)
	if got, want := risk.openQty(), openOrders(t, x); !sameReservations(got, want) {
		t.Fatalf("risk holds %v, the open orders need %v", got, want)
	}
}

// Scenario 1: a buy for 10 rests, 4 fill, the settlement is not sent, both processes die. After
// the restart the fill is settled before the buy's reservation is restored at its remaining 6:
// both legs apply once, nothing is reserved twice, money is conserved.
func TestJointRestartSettlesBeforeItRestores(t *testing.T) {
	dir := t.TempDir()
	risk := newFakeRisk()
	x := openTest(t, dir, risk, fastProbe)
	addSymbol(t, x, "BTC-USD")
	buy := submit(t, x, limit("alice", "b", book.Buy, 10000, 10)).Order
	eventually(t, "the first sync", func() bool { return synced(x) })
	risk.set(func(f *fakeRisk) { f.holdSettle = true })
	if r := submit(t, x, limit("bob", "s", book.Sell, 10000, 4)); r.Err != nil || r.Order.Status != StatusFilled {
		t.Fatalf("crossing sell: %+v", r)
	}
	crash(t, x)
	risk.restart()
	risk.set(func(f *fakeRisk) { f.holdSettle = false })

	y := openTest(t, dir, risk, fastProbe)
	defer closeTest(t, y)
	eventually(t, "settlement and re-sync after the restart", func() bool { return synced(y) })
	if b, _ := risk.filledQty("alice"); b != 4 {
		t.Fatalf("alice bought %d in risk, want 4", b)
	}
	if _, s := risk.filledQty("bob"); s != 4 {
		t.Fatalf("bob sold %d in risk, want 4 (both legs)", s)
	}
	got := risk.openQty()
	if len(got) != 1 || got[buy.reservation] != 6 {
		t.Fatalf("risk holds %v, want only the buy's remaining 6", got)
	}
	if err := risk.conserved(); err != nil {
		t.Fatal(err)
	}
}

// Scenario 2: after a risk restart the reservations come back even though orders were checked
// first (there is no window that closes), and they stay equal to the open orders.
func TestRiskRestartRestoresReservationsWhileTrading(t *testing.T) {
	risk := newFakeRisk()
	x := openTest(t, t.TempDir(), risk, fastProbe)
	defer closeTest(t, x)
	addSymbol(t, x, "BTC-USD")
	addSymbol(t, x, "ETH-USD")
	for i, p := range []int64{9000, 9100, 9200} {
		submit(t, x, limit("alice", "a"+string(rune('0'+i)), book.Buy, p, 3))
	}
	eventually(t, "the first sync", func() bool { return synced(x) })
	risk.restart()
	// An order checked by the new incarnation before the re-sync must survive it.
	submit(t, x, limit("bob", "b1", book.Sell, 9500, 2))
	eventually(t, "reservations equal to the open orders", func() bool {
		return synced(x) && sameReservations(risk.openQty(), openOrders(t, x))
	})
	if n := len(openOrders(t, x)); n != 4 {
		t.Fatalf("%d open orders, want 4", n)
	}
}

// Scenario 7: a check whose answer is lost after risk reserved leaves no reservation behind once
// the re-sync it triggers has run; the client's retry reserves once.
func TestLostCheckAnswerLeavesNoReservation(t *testing.T) {
	risk := newFakeRisk()
	x := openTest(t, t.TempDir(), risk, fastProbe)
	defer closeTest(t, x)
	addSymbol(t, x, "BTC-USD")
	eventually(t, "the first sync", func() bool { return synced(x) })
	risk.set(func(f *fakeRisk) { f.lostAnswers = 1 })
	if r := submit(t, x, limit("alice", "c1", book.Buy, 9000, 5)); errs.KindOf(r.Err) != errs.KindUnavailable {
		t.Fatalf("lost answer: %+v", r)
	}
	eventually(t, "the orphan dropped", func() bool { return synced(x) && risk.openCount() == 0 })
	if r := submit(t, x, limit("alice", "c1", book.Buy, 9000, 5)); r.Err != nil || r.Order.Status != StatusNew {
		t.Fatalf("retry: %+v", r)
	}
	eventually(t, "one reservation", func() bool { return sameReservations(risk.openQty(), openOrders(t, x)) })
}

// Scenario 5: a settlement risk refuses halts the shard's symbols (never a dropped leg); other
// shards keep trading; once the cause is fixed, resuming applies the trade whole.
func TestRefusedSettlementHaltsTheShard(t *testing.T) {
	risk := newFakeRisk()
	x := openTest(t, t.TempDir(), risk)
	defer closeTest(t, x)
	addSymbol(t, x, "BTC-USD")
	addSymbol(t, x, "ETH-USD") // the other shard
	risk.set(func(f *fakeRisk) { f.refuse = "carol" })
	submit(t, x, limit("carol", "s", book.Sell, 10000, 2))
	submit(t, x, limit("alice", "b", book.Buy, 10000, 2))
	eventually(t, "the shard halted", func() bool { return haltedShards(x) == 1 })
	r := submit(t, x, limit("alice", "b2", book.Buy, 9000, 1))
	if errs.KindOf(r.Err) != errs.KindFailedPrecondition {
		t.Fatalf("order on a halted symbol: %+v", r)
	}
	eth := limit("alice", "e1", book.Buy, 9000, 1)
	eth.Symbol = "ETH-USD"
	if r := submit(t, x, eth); r.Err != nil {
		t.Fatalf("order on the other shard: %+v", r)
	}
	if b, _ := risk.filledQty("alice"); b != 0 {
		t.Fatalf("one leg applied: alice bought %d", b)
	}
	risk.set(func(f *fakeRisk) { f.refuse = "" })
	st, err := x.ResumeSettlement(x.shards[0].index)
	if err != nil {
		t.Fatal(err)
	}
	// The retry runs on the shard's replicator, so it may already have settled when the status is
	// read; what the answer must never say is "not halted" while the trade is still unsettled.
	if !st.Halted && st.SettledSeq != st.JournalSeq {
		t.Fatalf("resumed status: not halted, yet settled to %d of %d: %+v", st.SettledSeq, st.JournalSeq, st)
	}
	eventually(t, "trading again", func() bool { return haltedShards(x) == 0 })
	waitSettled(t, x)
	if b, _ := risk.filledQty("alice"); b != 2 {
		t.Fatalf("alice bought %d, want 2", b)
	}
	if _, s := risk.filledQty("carol"); s != 2 {
		t.Fatalf("carol sold %d, want 2", s)
	}
	if r := submit(t, x, limit("alice", "b3", book.Buy, 9000, 1)); r.Err != nil {
		t.Fatalf("after resume: %+v", r)
	}
}

// Scenario 6: a journal that starts over gets a new epoch, so its positions (which restart at 1)
// are a new stream in risk and settle instead of being skipped as already applied.
func TestLostJournalStartsANewStream(t *testing.T) {
	dir := t.TempDir()
	risk := newFakeRisk()
	x := openTest(t, dir, risk)
	addSymbol(t, x, "BTC-USD")
	submit(t, x, limit("carol", "s", book.Sell, 10000, 2))
	submit(t, x, limit("alice", "b", book.Buy, 10000, 2))
	waitSettled(t, x)
	epoch := x.SettlementStatus()[0].Epoch
	closeTest(t, x)
	if err := os.RemoveAll(filepath.Join(dir, "shard-000")); err != nil {
		t.Fatal(err)
	}

	y := openTest(t, dir, risk)
	defer closeTest(t, y)
	if e := y.SettlementStatus()[0].Epoch; e == epoch || e == 0 {
		t.Fatalf("epoch %x after the journal was lost, was %x", e, epoch)
	}
	addSymbol(t, y, "BTC-USD")
	submit(t, y, limit("carol", "s2", book.Sell, 10000, 3))
	submit(t, y, limit("alice", "b2", book.Buy, 10000, 3))
	waitSettled(t, y)
	if b, _ := risk.filledQty("alice"); b != 5 {
		t.Fatalf("alice bought %d in risk, want 2 + 3", b)
	}
}

// Issue 10: an amend that reprices replaces the order's reservation in one step: an account whose
// funds are all in the order can still reprice it, and one reservation remains.
func TestRepriceReplacesTheReservation(t *testing.T) {
	risk := newFakeRisk()
	x := openTest(t, t.TempDir(), risk)
	defer closeTest(t, x)
	addSymbol(t, x, "BTC-USD")
	o := submit(t, x, limit("tight", "a", book.Buy, 10000, 5)).Order
	r := call(t, func(d func(Result)) {
		x.Amend(context.Background(), AmendRequest{OrderRef: OrderRef{Account: "tight", Symbol: "BTC-USD", OrderID: o.ID}, Price: 9900}, d)
	})
	if r.Err != nil || r.Order.Reject != 0 || r.Order.Price != 9900 {
		t.Fatalf("reprice with every funds in the order: %+v", r)
	}
	waitSettled(t, x)
	if got, want := risk.openQty(), openOrders(t, x); !sameReservations(got, want) || len(got) != 1 {
		t.Fatalf("risk holds %v, the open orders need %v", got, want)
	}
}

// Issue 10: the kill switch cancels resting orders, of one account or (global) of everyone.
func TestKillSwitchCancelsRestingOrders(t *testing.T) {
	risk := newFakeRisk()
	x := openTest(t, t.TempDir(), risk, fastProbe)
	defer closeTest(t, x)
	addSymbol(t, x, "BTC-USD")
	addSymbol(t, x, "ETH-USD")
	a := submit(t, x, limit("alice", "a1", book.Buy, 9000, 1)).Order
	eth := limit("alice", "a2", book.Buy, 9000, 1)
	eth.Symbol = "ETH-USD"
	submit(t, x, eth)
	b := submit(t, x, limit("bob", "b1", book.Buy, 9000, 1)).Order
	status := func(acct, symbol string, id uint64) Status {
		return call(t, func(d func(Result)) { x.GetOrder(OrderRef{Account: acct, Symbol: symbol, OrderID: id}, d) }).Order.Status
	}
	risk.set(func(f *fakeRisk) { f.halted = map[string]bool{"alice": true} })
	eventually(t, "alice's orders cancelled", func() bool {
		return status("alice", "BTC-USD", a.ID) == StatusCancelled && len(openOrders(t, x)) == 1
	})
	if status("bob", "BTC-USD", b.ID) != StatusNew {
		t.Fatal("bob's order was cancelled by alice's kill switch")
	}
	risk.set(func(f *fakeRisk) { f.halted, f.allHalted = nil, true })
	eventually(t, "every order cancelled", func() bool { return len(openOrders(t, x)) == 0 })
	waitSettled(t, x)
	eventually(t, "every reservation released", func() bool { return risk.openCount() == 0 })
}

// Two amends of one order checked at once: the second was checked at the order's old price, and
// executes after the first moved it. Its reservation must not be used at the new price (risk would
// refuse the fill, a sell below its reservation's limit): it is checked again.
func TestConcurrentAmendsKeepTheReservationAtTheOrdersPrice(t *testing.T) {
	risk := newFakeRisk()
	x := openTest(t, t.TempDir(), risk)
	defer closeTest(t, x)
	addSymbol(t, x, "BTC-USD")
	o := submit(t, x, limit("alice", "s", book.Sell, 10025, 5)).Order
	ref := OrderRef{Account: "alice", Symbol: "BTC-USD", OrderID: o.ID}
	// Hold the shard so both amends' checks complete before either executes.
	m, err := x.market("BTC-USD")
	if err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{})
	if err := m.shard.enqueue(command{kind: cmdQuery, query: func(*output) { <-hold }}); err != nil {
		t.Fatal(err)
	}
	first, second := make(chan Result, 1), make(chan Result, 1)
	x.Amend(context.Background(), AmendRequest{OrderRef: ref, Price: 10005}, func(r Result) { first <- r })
	x.Amend(context.Background(), AmendRequest{OrderRef: ref, Qty: 8}, func(r Result) { second <- r })
	close(hold) // both amends run in one batch: both are checked before either executes
	for _, ch := range []chan Result{first, second} {
		select {
		case r := <-ch:
			if r.Err != nil {
				t.Fatalf("amend: %v", r.Err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no answer")
		}
	}
	got := call(t, func(d func(Result)) { x.GetOrder(ref, d) }).Order
	if got.Price != 10005 || got.Qty != 8 {
		t.Fatalf("order after both amends: %+v", got)
	}
	if r := submit(t, x, limit("bob", "b", book.Buy, 10005, 8)); len(r.Fills) != 1 {
		t.Fatalf("crossing buy: %+v", r)
	}
	eventually(t, "settled or halted", func() bool { return haltedShards(x) > 0 || synced(x) })
	if haltedShards(x) != 0 {
		t.Fatalf("settlement halted: %+v", x.SettlementStatus())
	}
	if _, s := risk.filledQty("alice"); s != 8 {
		t.Fatalf("alice sold %d in risk, want 8", s)
	}
	eventually(t, "no reservation left", func() bool { return risk.openCount() == 0 })
}

// A fill between an amend's check and its execution: the replacement reservation was made for the
// lots unfilled at check time; the excess is freed (I2).
func TestAmendAfterARacingFillHoldsOnlyTheRest(t *testing.T) {
	risk := newFakeRisk()
	x := openTest(t, t.TempDir(), risk)
	defer closeTest(t, x)
	addSymbol(t, x, "BTC-USD")
	o := submit(t, x, limit("alice", "b", book.Buy, 10000, 3))
	ref := OrderRef{Account: "alice", Symbol: "BTC-USD", OrderID: o.Order.ID}
	// The amend's check (3 lots at 99.80) is held while a sell of 1 lot fills the order at 100.00.
	gate := make(chan struct{})
	risk.set(func(f *fakeRisk) { f.gate, f.gatePrice = gate, 9980 })
	amended := make(chan Result, 1)
	x.Amend(context.Background(), AmendRequest{OrderRef: ref, Price: 9980}, func(r Result) { amended <- r })
	eventually(t, "the amend's check held", func() bool { return risk.gated.Load() == 1 })
	if r := submit(t, x, limit("bob", "s", book.Sell, 10000, 1)); len(r.Fills) != 1 {
		t.Fatalf("the sell should fill the order at its old price: %+v", r)
	}
	close(gate)
	if r := <-amended; r.Err != nil || r.Order.Price != 9980 || r.Order.Remaining != 2 {
		t.Fatalf("amend: %+v", r)
	}
	waitSettled(t, x)
	if got, want := risk.openQty(), openOrders(t, x); !sameReservations(got, want) {
		t.Fatalf("risk holds %v, the open orders need %v", got, want)
	}
}
