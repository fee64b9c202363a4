package engine

import (
	"fmt"
	"testing"
	"time"
)

// The fixture market: prices of BTC-USD in cents (price scale 2 on USD scale 2) and whole-BTC lots,
// so notional = price × qty and a fill is easy to check by hand. 1000 ppm = 0.1 % taker fee.
const (
	btcUSD    = "BTC-USD"
	refPrice  = 10_000 // 100.00 USD
	feePPM    = 1_000
	btcPerLot = 100_000_000 // base units per lot
	t0        = int64(1_700_000_000) * int64(time.Second)
)

func newFixture(t testing.TB, cfg Config) *Engine {
	t.Helper()
	e, err := New(cfg)
	must(t, err)
	must(t, e.DefineAsset(Asset{ID: "USD", Scale: 2}, nil))
	must(t, e.DefineAsset(Asset{ID: "BTC", Scale: 8}, nil))
	must(t, e.DefineSymbol(SymbolSpec{ID: btcUSD, Base: "BTC", Quote: "USD", PriceScale: 2, QtyScale: 0,
		TakerFeePPM: feePPM, ReferencePrice: refPrice}, nil))
	return e
}

// fund opens an account with usd cents and btc lots.
func fund(t testing.TB, e *Engine, id string, usd, btcLots int64) {
	t.Helper()
	must(t, e.OpenAccount(AccountSpec{ID: id}, nil))
	if usd > 0 {
		_, err := e.Credit(Transfer{Account: id, Asset: "USD", Amount: usd, Ref: id + "-usd"}, nil)
		must(t, err)
	}
	if btcLots > 0 {
		_, err := e.Credit(Transfer{Account: id, Asset: "BTC", Amount: btcLots * btcPerLot, Ref: id + "-btc"}, nil)
		must(t, err)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func order(acct string, side Side, price, qty int64) OrderCheck {
	return OrderCheck{Account: acct, Symbol: btcUSD, Side: side, Type: OrderLimit, Price: price, Qty: qty, Now: t0}
}

func mustAccept(t testing.TB, e *Engine, c OrderCheck) uint64 {
	t.Helper()
	id, r := e.CheckOrder(c)
	if r != Accepted {
		t.Fatalf("CheckOrder(%+v) = %v, want accepted", c, r)
	}
	return id
}

var execSeq int

// trade crosses buyer and seller at price for qty lots at time at, the buyer paying the symbol's
// taker fee and the seller none, and returns the batch result.
func trade(t testing.TB, e *Engine, buyer, seller string, price, qty int64, at int64) ExecutionsResult {
	t.Helper()
	return tradePersisted(t, e, nil, buyer, seller, price, qty, at)
}

func tradePersisted(t testing.TB, e *Engine, persist PersistFunc, buyer, seller string, price, qty int64, at int64) ExecutionsResult {
	t.Helper()
	buy := mustAccept(t, e, OrderCheck{Account: buyer, Symbol: btcUSD, Side: SideBuy, Type: OrderLimit, Price: price, Qty: qty, Now: at})
	sell := mustAccept(t, e, OrderCheck{Account: seller, Symbol: btcUSD, Side: SideSell, Type: OrderLimit, Price: price, Qty: qty, Now: at})
	execSeq++
	sym, err := e.Symbol(btcUSD)
	must(t, err)
	res, err := e.ApplyExecutions([]Execution{
		{ExecID: fmt.Sprintf("x%d-b", execSeq), ReservationID: buy, Account: buyer, Symbol: btcUSD, Side: SideBuy, Price: price, Qty: qty, Fee: ceilPPM(price*qty, sym.TakerFeePPM), Time: at},
		{ExecID: fmt.Sprintf("x%d-s", execSeq), ReservationID: sell, Account: seller, Symbol: btcUSD, Side: SideSell, Price: price, Qty: qty, Time: at},
	}, persist)
	must(t, err)
	return res
}

func view(t testing.TB, e *Engine, id string) AccountView {
	t.Helper()
	v, err := e.Account(id)
	must(t, err)
	return v
}

func balanceOf(v AccountView, asset string) BalanceView {
	for _, b := range v.Balances {
		if b.Asset == asset {
			return b
		}
	}
	return BalanceView{Asset: asset}
}

func positionOf(v AccountView, sym string) PositionView {
	for _, p := range v.Positions {
		if p.Symbol == sym {
			return p
		}
	}
	return PositionView{Symbol: sym}
}
