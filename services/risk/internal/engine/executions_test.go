package engine

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/bourse-dev/bourse/pkg/errs"
)

func TestFillMovesBalancesAndFreesPriceImprovement(t *testing.T) {
	e := newFixture(t, Config{})
	fund(t, e, "alice", 1_000_000, 0)
	fund(t, e, "bob", 0, 10)
	buy := mustAccept(t, e, order("alice", SideBuy, 10_000, 10))
	if got := balanceOf(view(t, e, "alice"), "USD").Reserved; got != 100_100 {
		t.Fatalf("buy reserved %d, want 100000 + 100 fee", got)
	}
	sell := mustAccept(t, e, order("bob", SideSell, 9_000, 10))
	if got := balanceOf(view(t, e, "bob"), "BTC").Reserved; got != 10*btcPerLot {
		t.Fatalf("sell reserved %d", got)
	}

	// 4 lots at 90.00: alice pays 36,000 + 36 fee; bob receives 36,000 − 18 maker fee.
	res, err := e.ApplyExecutions([]Execution{
		{ExecID: "1b", ReservationID: buy, Account: "alice", Symbol: btcUSD, Side: SideBuy, Price: 9_000, Qty: 4, Fee: 36, Time: t0},
		{ExecID: "1s", ReservationID: sell, Account: "bob", Symbol: btcUSD, Side: SideSell, Price: 9_000, Qty: 4, Fee: 18, Time: t0},
	}, nil)
	must(t, err)
	if res.Applied != 2 || res.Duplicates != 0 || res.Seq == 0 {
		t.Fatalf("result %+v", res)
	}
	alice, bob := view(t, e, "alice"), view(t, e, "bob")
	// The rest (6 lots at the 100.00 limit) keeps 60,000 + 60; the 4,000 price improvement is free.
	if b := balanceOf(alice, "USD"); b.Total != 1_000_000-36_036 || b.Reserved != 60_060 || b.Available != b.Total-b.Reserved {
		t.Fatalf("alice USD %+v", b)
	}
	if b := balanceOf(alice, "BTC"); b.Total != 4*btcPerLot || b.Reserved != 0 {
		t.Fatalf("alice BTC %+v", b)
	}
	if b := balanceOf(bob, "USD"); b.Total != 36_000-18 {
		t.Fatalf("bob USD %+v", b)
	}
	if b := balanceOf(bob, "BTC"); b.Total != 6*btcPerLot || b.Reserved != 6*btcPerLot {
		t.Fatalf("bob BTC %+v", b)
	}
	if b := balanceOf(view(t, e, "fees"), "USD"); b.Total != 54 {
		t.Fatalf("fee account %+v", b)
	}
	if r := alice.Reservations; len(r) != 1 || r[0].Qty != 6 || r[0].Amount != 60_060 {
		t.Fatalf("alice reservations %+v", r)
	}
	if p := positionOf(alice, btcUSD); p.Qty != 4 || p.AvgPrice != 9_000 || p.OpenBuyQty != 6 || p.FeesPaid != 36 || p.MarkPrice != 9_000 {
		t.Fatalf("alice position %+v", p)
	}

	// Filling the rest closes the reservation; Release then finds nothing.
	_, err = e.ApplyExecutions([]Execution{
		{ExecID: "2b", ReservationID: buy, Account: "alice", Symbol: btcUSD, Side: SideBuy, Price: 10_000, Qty: 6, Fee: 60, Time: t0},
		{ExecID: "2s", ReservationID: sell, Account: "bob", Symbol: btcUSD, Side: SideSell, Price: 10_000, Qty: 6, Time: t0},
	}, nil)
	must(t, err)
	alice = view(t, e, "alice")
	if b := balanceOf(alice, "USD"); b.Reserved != 0 || b.Total != 1_000_000-36_036-60_060 {
		t.Fatalf("alice USD after full fill %+v", b)
	}
	if len(alice.Reservations) != 0 {
		t.Fatalf("reservations left: %+v", alice.Reservations)
	}
	wantKind(t, e.Release(buy), errs.KindNotFound)
	wantKind(t, e.Release(sell), errs.KindNotFound)
}

func TestReleaseFreesTheRest(t *testing.T) {
	e := newFixture(t, Config{})
	fund(t, e, "alice", 1_000_000, 3)
	buy := mustAccept(t, e, order("alice", SideBuy, 10_000, 10))
	sell := mustAccept(t, e, order("alice", SideSell, 10_000, 3))
	must(t, e.Release(buy))
	must(t, e.Release(sell))
	wantKind(t, e.Release(buy), errs.KindNotFound)
	wantKind(t, e.Release(12345), errs.KindNotFound)
	v := view(t, e, "alice")
	for _, b := range v.Balances {
		if b.Reserved != 0 || b.Available != b.Total {
			t.Fatalf("balance after release %+v", b)
		}
	}
	if len(v.Positions) != 0 || len(v.Reservations) != 0 {
		t.Fatalf("leftovers %+v", v)
	}
}

func TestExecutionsAreIdempotentByExecID(t *testing.T) {
	e := newFixture(t, Config{})
	fund(t, e, "alice", 1_000_000, 0)
	fund(t, e, "bob", 0, 10)
	buy := mustAccept(t, e, order("alice", SideBuy, 10_000, 10))
	sell := mustAccept(t, e, order("bob", SideSell, 10_000, 10))
	batch := []Execution{
		{ExecID: "e1", ReservationID: buy, Account: "alice", Symbol: btcUSD, Side: SideBuy, Price: 10_000, Qty: 2, Fee: 20, Time: t0},
		{ExecID: "e2", ReservationID: sell, Account: "bob", Symbol: btcUSD, Side: SideSell, Price: 10_000, Qty: 2, Time: t0},
	}
	persisted := 0
	persist := func(Event) error { persisted++; return nil }
	_, err := e.ApplyExecutions(batch, persist)
	must(t, err)
	before := []AccountView{view(t, e, "alice"), view(t, e, "bob")}
	res, err := e.ApplyExecutions(batch, persist)
	must(t, err)
	if res.Applied != 0 || res.Duplicates != 2 || res.Seq != 0 || persisted != 1 {
		t.Fatalf("replayed batch: %+v, persisted %d", res, persisted)
	}
	if after := []AccountView{view(t, e, "alice"), view(t, e, "bob")}; !reflect.DeepEqual(before, after) {
		t.Fatal("a duplicate batch changed accounts")
	}

	// A batch mixing an old and a new execution applies only the new one.
	mixed := []Execution{batch[0], {ExecID: "e3", ReservationID: buy, Account: "alice", Symbol: btcUSD, Side: SideBuy, Price: 10_000, Qty: 1, Fee: 10, Time: t0}}
	res, err = e.ApplyExecutions(mixed, persist)
	must(t, err)
	if res.Applied != 1 || res.Duplicates != 1 {
		t.Fatalf("mixed batch: %+v", res)
	}

	// Error fields name the execution's place in the batch the caller sent, duplicates included.
	tooBig := mixed[1]
	tooBig.ExecID, tooBig.Qty = "e4", 100
	_, err = e.ApplyExecutions([]Execution{batch[0], tooBig}, nil)
	if ee, ok := errors.AsType[*errs.Error](err); !ok || ee.Field != "executions[1].qty" {
		t.Fatalf("error %v does not name executions[1].qty", err)
	}

	changed := batch[0]
	changed.Qty = 3
	_, err = e.ApplyExecutions([]Execution{changed}, nil)
	wantKind(t, err, errs.KindAlreadyExists)
	twice := batch[1]
	twice.ExecID = "e9"
	_, err = e.ApplyExecutions([]Execution{twice, twice}, nil)
	wantKind(t, err, errs.KindInvalidArgument)
}

// TestInvalidFillRejectsWholeBatch: one bad fill and nothing in the batch happens.
func TestInvalidFillRejectsWholeBatch(t *testing.T) {
	e := newFixture(t, Config{})
	fund(t, e, "alice", 1_000_000, 0)
	fund(t, e, "bob", 0, 10)
	fund(t, e, "carol", 0, 0)
	buy := mustAccept(t, e, order("alice", SideBuy, 10_000, 5))
	sell := mustAccept(t, e, order("bob", SideSell, 10_000, 5))
	good := Execution{ExecID: "g", ReservationID: buy, Account: "alice", Symbol: btcUSD, Side: SideBuy, Price: 10_000, Qty: 1, Fee: 10, Time: t0}
	goodSell := Execution{ExecID: "gs", ReservationID: sell, Account: "bob", Symbol: btcUSD, Side: SideSell, Price: 10_000, Qty: 1, Time: t0}

	bad := func(mut func(*Execution)) Execution {
		x := goodSell
		x.ExecID = "bad"
		mut(&x)
		return x
	}
	cases := []struct {
		name string
		x    Execution
		kind errs.Kind
	}{
		{"unknown reservation", bad(func(x *Execution) { x.ReservationID = 999_999 }), errs.KindNotFound},
		{"reservation of another account", bad(func(x *Execution) { x.ReservationID = buy }), errs.KindInvalidArgument},
		{"sell below its limit", bad(func(x *Execution) { x.Price = 9_999 }), errs.KindInvalidArgument},
		{"more than remains", bad(func(x *Execution) { x.Qty = 6 }), errs.KindInvalidArgument},
		{"wrong side", bad(func(x *Execution) { x.Side = SideBuy }), errs.KindInvalidArgument},
		{"unknown symbol", bad(func(x *Execution) { x.Symbol = "ETH-USD" }), errs.KindNotFound},
		{"unknown account", bad(func(x *Execution) { x.Account = "nobody" }), errs.KindNotFound},
		{"negative fee", bad(func(x *Execution) { x.Fee = -1 }), errs.KindInvalidArgument},
		{"fee above notional", bad(func(x *Execution) { x.Fee = 10_001 }), errs.KindInvalidArgument},
		{"zero qty", bad(func(x *Execution) { x.Qty = 0 }), errs.KindInvalidArgument},
		{"zero price", bad(func(x *Execution) { x.Price = 0 }), errs.KindInvalidArgument},
		{"no exec id", bad(func(x *Execution) { x.ExecID = "" }), errs.KindInvalidArgument},
		{"fill overflows", bad(func(x *Execution) { x.Price, x.Qty = 1<<62, 4 }), errs.KindInvalidArgument},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := []AccountView{view(t, e, "alice"), view(t, e, "bob"), view(t, e, "fees")}
			seq := e.LastSeq()
			_, err := e.ApplyExecutions([]Execution{good, tc.x, goodSell}, func(Event) error {
				t.Fatal("persisted an invalid batch")
				return nil
			})
			wantKind(t, err, tc.kind)
			after := []AccountView{view(t, e, "alice"), view(t, e, "bob"), view(t, e, "fees")}
			if !reflect.DeepEqual(before, after) || e.LastSeq() != seq {
				t.Fatal("a failed batch changed state")
			}
		})
	}
	// A buyer whose fee exceeds what the fill released and who has nothing free cannot settle.
	fund(t, e, "dave", 10_010, 0)
	dbuy := mustAccept(t, e, order("dave", SideBuy, 10_000, 1))
	_, err := e.ApplyExecutions([]Execution{{ExecID: "over", ReservationID: dbuy, Account: "dave", Symbol: btcUSD, Side: SideBuy, Price: 10_000, Qty: 1, Fee: 11, Time: t0}}, nil)
	wantKind(t, err, errs.KindFailedPrecondition)
	_, err = e.ApplyExecutions(nil, nil)
	wantKind(t, err, errs.KindInvalidArgument)
}

// TestPositionPnL walks a position through adding, partial closing, flipping and closing, with
// exact cost-basis accounting (fees 0 to keep the figures plain).
func TestPositionPnL(t *testing.T) {
	e := newFixture(t, Config{})
	must(t, e.DefineSymbol(SymbolSpec{ID: btcUSD, Base: "BTC", Quote: "USD", PriceScale: 2, TakerFeePPM: 0, ReferencePrice: refPrice}, nil))
	fund(t, e, "alice", 10_000_000, 100)
	fund(t, e, "bob", 10_000_000, 100)
	step := func(aliceBuys bool, price, qty int64) PositionView {
		t.Helper()
		if aliceBuys {
			trade(t, e, "alice", "bob", price, qty, t0)
		} else {
			trade(t, e, "bob", "alice", price, qty, t0)
		}
		return positionOf(view(t, e, "alice"), btcUSD)
	}
	p := step(true, 10_000, 10)
	p = step(true, 11_000, 10)
	if p.Qty != 20 || p.CostBasis != 210_000 || p.AvgPrice != 10_500 || p.RealisedPnL != 0 {
		t.Fatalf("after adding: %+v", p)
	}
	if p.UnrealisedPnL != 20*11_000-210_000 || p.HighWaterMark != 10_000 {
		t.Fatalf("unrealised/hwm after adding: %+v", p)
	}
	p = step(false, 12_000, 15) // closes 15 of 20: cost share 157,500, proceeds 180,000
	if p.Qty != 5 || p.CostBasis != 52_500 || p.RealisedPnL != 22_500 {
		t.Fatalf("after partial close: %+v", p)
	}
	p = step(false, 9_000, 10) // closes 5 (−7,500) and flips to short 5 at 90.00
	if p.Qty != -5 || p.CostBasis != 45_000 || p.AvgPrice != 9_000 || p.RealisedPnL != 15_000 {
		t.Fatalf("after flip: %+v", p)
	}
	p = step(true, 8_000, 5) // short covered 10.00 lower
	if p.Qty != 0 || p.CostBasis != 0 || p.RealisedPnL != 20_000 || p.UnrealisedPnL != 0 || p.Equity != 20_000 {
		t.Fatalf("after closing: %+v", p)
	}
	if b := positionOf(view(t, e, "bob"), btcUSD); b.RealisedPnL != -20_000 || b.Qty != 0 {
		t.Fatalf("bob mirrors alice: %+v", b)
	}
}

// TestLargeBatchMatchesSmallBatches applies many fills in one batch (past the point where the plan
// switches from scanning to maps) and requires the same result as one batch per trade.
func TestLargeBatchMatchesSmallBatches(t *testing.T) {
	build := func() (*Engine, map[string]uint64) {
		e := newFixture(t, Config{})
		ids := map[string]uint64{}
		for i := range 12 {
			buyer, seller := fmt.Sprintf("b%d", i), fmt.Sprintf("s%d", i)
			fund(t, e, buyer, 10_000_000, 0)
			fund(t, e, seller, 0, 100)
			ids[buyer] = mustAccept(t, e, order(buyer, SideBuy, 10_100, 50))
			ids[seller] = mustAccept(t, e, order(seller, SideSell, 9_900, 50))
		}
		return e, ids
	}
	var batch []Execution
	_, ids := build()
	for round := range 3 {
		for i := range 12 {
			buyer, seller := fmt.Sprintf("b%d", i), fmt.Sprintf("s%d", i)
			price, qty := int64(9_900+50*round+i), int64(1+i%4)
			batch = append(batch,
				Execution{ExecID: fmt.Sprintf("%d-%d-b", round, i), ReservationID: ids[buyer], Account: buyer, Symbol: btcUSD, Side: SideBuy, Price: price, Qty: qty, Fee: 5, Time: t0},
				Execution{ExecID: fmt.Sprintf("%d-%d-s", round, i), ReservationID: ids[seller], Account: seller, Symbol: btcUSD, Side: SideSell, Price: price, Qty: qty, Fee: 3, Time: t0})
		}
	}
	one, _ := build()
	res, err := one.ApplyExecutions(batch, nil)
	must(t, err)
	if res.Applied != len(batch) {
		t.Fatalf("applied %d of %d", res.Applied, len(batch))
	}
	many, _ := build()
	for i := 0; i < len(batch); i += 2 {
		_, err := many.ApplyExecutions(batch[i:i+2], nil)
		must(t, err)
	}
	for _, id := range one.AccountIDs() {
		if a, b := view(t, one, id), view(t, many, id); !reflect.DeepEqual(a, b) {
			t.Fatalf("%s differs:\none batch %+v\nper trade %+v", id, a, b)
		}
	}
}

// TestFeeChangeKeepsOpenReservationsBalanced: a reservation keeps the fee rate it was made at, so
// changing the symbol's fee cannot make a fill or release unlock more or less than was locked.
func TestFeeChangeKeepsOpenReservationsBalanced(t *testing.T) {
	e := newFixture(t, Config{})
	fund(t, e, "alice", 1_000_000, 0)
	fund(t, e, "bob", 0, 10)
	buy := mustAccept(t, e, order("alice", SideBuy, 10_000, 10)) // 100,000 + 100 at 1000 ppm
	must(t, e.DefineSymbol(SymbolSpec{ID: btcUSD, Base: "BTC", Quote: "USD", PriceScale: 2, TakerFeePPM: 50_000, ReferencePrice: refPrice}, nil))
	sell := mustAccept(t, e, order("bob", SideSell, 10_000, 3))
	_, err := e.ApplyExecutions([]Execution{
		{ExecID: "f1", ReservationID: buy, Account: "alice", Symbol: btcUSD, Side: SideBuy, Price: 10_000, Qty: 3, Fee: 30, Time: t0},
		{ExecID: "f2", ReservationID: sell, Account: "bob", Symbol: btcUSD, Side: SideSell, Price: 10_000, Qty: 3, Time: t0},
	}, nil)
	must(t, err)
	if b := balanceOf(view(t, e, "alice"), "USD"); b.Reserved != 70_070 {
		t.Fatalf("rest reserves %d, want 70,070 at the original rate", b.Reserved)
	}
	must(t, e.Release(buy))
	if b := balanceOf(view(t, e, "alice"), "USD"); b.Reserved != 0 || b.Total != 1_000_000-30_030 {
		t.Fatalf("after release %+v", b)
	}
	// A new order pays the new rate.
	mustAccept(t, e, order("alice", SideBuy, 10_000, 1))
	if b := balanceOf(view(t, e, "alice"), "USD"); b.Reserved != 10_500 {
		t.Fatalf("new order reserves %d, want 10,500", b.Reserved)
	}
}

func TestViewsOfUnknownThings(t *testing.T) {
	e := newFixture(t, Config{})
	_, err := e.Account("nobody")
	wantKind(t, err, errs.KindNotFound)
	_, err = e.Symbol("NOPE")
	wantKind(t, err, errs.KindNotFound)
	if ids := e.AccountIDs(); len(ids) != 1 || ids[0] != "fees" {
		t.Fatalf("accounts %v", ids)
	}
	if len(e.Assets()) != 2 || len(e.Symbols()) != 1 {
		t.Fatalf("assets %v symbols %v", e.Assets(), e.Symbols())
	}
}
