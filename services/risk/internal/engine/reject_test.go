package engine

import (
	"math"
	"reflect"
	"testing"
	"time"
)

// TestCheckOrderRejects provokes every reject reason, one row at a time on a fresh engine, and checks
// a reject reserves nothing.
func TestCheckOrderRejects(t *testing.T) {
	setLimits := func(l Limits) func(*testing.T, *Engine) {
		return func(t *testing.T, e *Engine) {
			must(t, e.SetLimits(LimitsChange{Account: "alice", Limits: l}, nil))
		}
	}
	halt := func(account string, s TradingState) func(*testing.T, *Engine) {
		return func(t *testing.T, e *Engine) {
			must(t, e.SetTradingState(TradingStateChange{Account: account, State: s}, nil))
		}
	}
	buy := order("alice", SideBuy, refPrice, 1)

	tests := []struct {
		name  string
		setup func(*testing.T, *Engine)
		check OrderCheck
		want  Reject
	}{
		{"insufficient quote for a buy", nil, order("alice", SideBuy, refPrice, 1_000), RejectInsufficientFunds},
		{"insufficient base for a sell", nil, order("alice", SideSell, refPrice, 11), RejectInsufficientFunds},
		// 100 lots cost exactly the balance; the 0.1 % fee does not fit.
		{"fee pushes a buy over the balance", nil, order("alice", SideBuy, 10_000, 100), RejectInsufficientFunds},
		{"max position", setLimits(Limits{MaxPosition: 5}), order("alice", SideBuy, refPrice, 6), RejectMaxPosition},
		{"max position counts open orders", func(t *testing.T, e *Engine) {
			setLimits(Limits{MaxPosition: 5})(t, e)
			mustAccept(t, e, order("alice", SideBuy, refPrice, 4))
		}, order("alice", SideBuy, refPrice, 2), RejectMaxPosition},
		{"max daily loss", func(t *testing.T, e *Engine) {
			trade(t, e, "alice", "bob", 10_000, 1, t0)
			trade(t, e, "bob", "alice", 9_000, 1, t0) // alice realises −1000, plus 10 fee
			setLimits(Limits{MaxDailyLoss: 1_000})(t, e)
		}, order("alice", SideBuy, 9_000, 1), RejectMaxDailyLoss},
		{"max drawdown", func(t *testing.T, e *Engine) {
			trade(t, e, "alice", "bob", 10_000, 1, t0)
			trade(t, e, "bob", "carol", 9_000, 1, t0) // mark falls: alice is 1000 down unrealised
			setLimits(Limits{MaxDrawdown: 1_000})(t, e)
		}, order("alice", SideBuy, 9_000, 1), RejectMaxDrawdown},
		{"price above band", setLimits(Limits{PriceBandPPM: 50_000}), order("alice", SideBuy, 10_501, 1), RejectPriceBand},
		{"price below band", setLimits(Limits{PriceBandPPM: 50_000}), order("alice", SideSell, 9_499, 1), RejectPriceBand},
		{"band follows the last trade", func(t *testing.T, e *Engine) {
			trade(t, e, "bob", "carol", 20_000, 1, t0)
			setLimits(Limits{PriceBandPPM: 50_000})(t, e)
		}, order("alice", SideBuy, refPrice, 1), RejectPriceBand},
		{"max order notional", setLimits(Limits{MaxOrderNotional: 9_999}), buy, RejectNotionalTooLarge},
		{"notional overflows", nil, order("alice", SideBuy, math.MaxInt64/2, 3), RejectNotionalTooLarge},
		{"sell base amount overflows", nil, order("alice", SideSell, 1, math.MaxInt64/btcPerLot+1), RejectNotionalTooLarge},
		{"order rate", func(t *testing.T, e *Engine) {
			setLimits(Limits{OrderRate: Rate{PerSecond: 1, Burst: 1}})(t, e)
			mustAccept(t, e, buy)
		}, buy, RejectOrderRate},
		{"account halted", halt("alice", TradingHalted), buy, RejectHalted},
		{"globally halted", halt("", TradingHalted), buy, RejectHalted},
		{"reduce-only order without a position", nil, OrderCheck{Account: "alice", Symbol: btcUSD, Side: SideSell, Type: OrderLimit, Price: refPrice, Qty: 1, ReduceOnly: true, Now: t0}, RejectReduceOnly},
		{"reduce-only state", halt("alice", TradingReduceOnly), buy, RejectReduceOnly},
		{"globally reduce-only", halt("", TradingReduceOnly), buy, RejectReduceOnly},
		{"unknown account", nil, order("mallory", SideBuy, refPrice, 1), RejectUnknownAccount},
		{"unknown symbol", nil, OrderCheck{Account: "alice", Symbol: "DOGE-USD", Side: SideBuy, Type: OrderLimit, Price: 1, Qty: 1}, RejectUnknownSymbol},
		{"zero quantity", nil, order("alice", SideBuy, refPrice, 0), RejectInvalidQuantity},
		{"negative quantity", nil, order("alice", SideBuy, refPrice, -1), RejectInvalidQuantity},
		{"zero price", nil, order("alice", SideBuy, 0, 1), RejectInvalidPrice},
		{"market order without protection price", nil, OrderCheck{Account: "alice", Symbol: btcUSD, Side: SideBuy, Type: OrderMarket, Qty: 1}, RejectInvalidPrice},
		{"missing side", nil, OrderCheck{Account: "alice", Symbol: btcUSD, Type: OrderLimit, Price: 1, Qty: 1}, RejectInvalidOrder},
		{"unknown order type", nil, OrderCheck{Account: "alice", Symbol: btcUSD, Side: SideBuy, Type: 9, Price: 1, Qty: 1}, RejectInvalidOrder},
	}
	covered := map[Reject]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newFixture(t, Config{})
			fund(t, e, "alice", 1_000_000, 10) // 10,000.00 USD and 10 BTC
			fund(t, e, "bob", 10_000_000, 100)
			fund(t, e, "carol", 10_000_000, 100)
			if tt.setup != nil {
				tt.setup(t, e)
			}
			before := view(t, e, "alice")
			id, got := e.CheckOrder(tt.check)
			if got != tt.want || id != 0 {
				t.Fatalf("CheckOrder = (%d, %v), want (0, %v)", id, got, tt.want)
			}
			if after := view(t, e, "alice"); !reflect.DeepEqual(before, after) {
				t.Fatalf("a reject changed the account:\nbefore %+v\nafter  %+v", before, after)
			}
			covered[got] = true
		})
	}
	for _, r := range Rejects() {
		if !covered[r] {
			t.Errorf("no row provokes %v", r)
		}
	}
}

func TestRejectStrings(t *testing.T) {
	seen := map[string]bool{Accepted.String(): true}
	for _, r := range Rejects() {
		s := r.String()
		if s == "" || seen[s] {
			t.Errorf("reject %d has empty or duplicate name %q", r, s)
		}
		seen[s] = true
	}
	if got := Reject(200).String(); got != "reject(200)" {
		t.Errorf("unknown reject prints %q", got)
	}
}

// TestMarketOrderReservesAtProtectionPrice checks a market buy reserves at its protection price and a
// fill below it frees the difference.
func TestMarketOrderReservesAtProtectionPrice(t *testing.T) {
	e := newFixture(t, Config{})
	fund(t, e, "alice", 1_000_000, 0)
	fund(t, e, "bob", 0, 10)
	id := mustAccept(t, e, OrderCheck{Account: "alice", Symbol: btcUSD, Side: SideBuy, Type: OrderMarket, Price: 10_500, Qty: 2, Now: t0})
	if got := balanceOf(view(t, e, "alice"), "USD").Reserved; got != 21_000+21 {
		t.Fatalf("reserved %d, want 21021", got)
	}
	sell := mustAccept(t, e, order("bob", SideSell, 10_000, 2))
	_, err := e.ApplyExecutions([]Execution{
		{ExecID: "m1", ReservationID: id, Account: "alice", Symbol: btcUSD, Side: SideBuy, Price: 10_000, Qty: 2, Fee: 20, Time: t0 + int64(time.Second)},
		{ExecID: "m2", ReservationID: sell, Account: "bob", Symbol: btcUSD, Side: SideSell, Price: 10_000, Qty: 2, Time: t0 + int64(time.Second)},
	}, nil)
	must(t, err)
	b := balanceOf(view(t, e, "alice"), "USD")
	if b.Total != 1_000_000-20_020 || b.Reserved != 0 {
		t.Fatalf("after fill: %+v", b)
	}
}
