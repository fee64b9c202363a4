package engine

import (
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
)

func at(base int64, d time.Duration) int64 { return base + int64(d) }

// TestDailyLossResetsAtCutoff: with the day rolling over at 22:00 UTC, a loss booked at 21:00 blocks
// new exposure until 22:00 sharp, and losses before the cutoff do not count after it.
func TestDailyLossResetsAtCutoff(t *testing.T) {
	e := newFixture(t, Config{DailyCutoff: 22 * time.Hour})
	fund(t, e, "alice", 10_000_000, 10)
	fund(t, e, "bob", 10_000_000, 10)
	midnight := time.Date(2024, 3, 5, 0, 0, 0, 0, time.UTC).UnixNano()
	nine, cutoff := at(midnight, 21*time.Hour), at(midnight, 22*time.Hour)

	trade(t, e, "alice", "bob", 10_000, 1, nine)
	trade(t, e, "bob", "alice", 9_500, 1, nine) // alice: −500 realised, −10 fee
	must(t, e.SetLimits(LimitsChange{Account: "alice", Limits: Limits{MaxDailyLoss: 510}}, nil))

	p := positionOf(view(t, e, "alice"), btcUSD)
	if p.DailyPnL != -510 || p.TradingDayStart != at(midnight, -2*time.Hour) {
		t.Fatalf("daily pnl %d from %v", p.DailyPnL, time.Unix(0, p.TradingDayStart).UTC())
	}
	check := func(now int64) Reject {
		c := order("alice", SideBuy, 9_500, 1)
		c.Now = now
		id, r := e.CheckOrder(c)
		if id != 0 {
			must(t, e.Release(id))
		}
		return r
	}
	if r := check(at(cutoff, -time.Nanosecond)); r != RejectMaxDailyLoss {
		t.Fatalf("just before the cutoff: %v", r)
	}
	if r := check(cutoff); r != Accepted {
		t.Fatalf("at the cutoff: %v", r)
	}
	// Losses on the new day count from zero.
	trade(t, e, "alice", "bob", 10_000, 1, at(cutoff, time.Minute))
	trade(t, e, "bob", "alice", 9_400, 1, at(cutoff, time.Minute)) // −600 −10
	if r := check(at(cutoff, time.Hour)); r != RejectMaxDailyLoss {
		t.Fatalf("after a new-day loss: %v", r)
	}
	if p := positionOf(view(t, e, "alice"), btcUSD); p.DailyPnL != -610 || p.TradingDayStart != cutoff {
		t.Fatalf("new day pnl %+v", p)
	}
}

// TestDrawdownFromHighWaterMark: equity peaks at a fill, the mark then falls, and new exposure is
// refused while the drawdown is at the limit; reducing orders still pass.
func TestDrawdownFromHighWaterMark(t *testing.T) {
	e := newFixture(t, Config{})
	must(t, e.DefineSymbol(SymbolSpec{ID: btcUSD, Base: "BTC", Quote: "USD", PriceScale: 2, ReferencePrice: refPrice}, nil)) // no fees
	fund(t, e, "alice", 10_000_000, 0)
	fund(t, e, "bob", 10_000_000, 100)
	fund(t, e, "carol", 10_000_000, 100)

	trade(t, e, "alice", "bob", 10_000, 2, t0)
	trade(t, e, "alice", "bob", 12_000, 1, t0) // equity at this fill: 3×120 − 320 = 40.00
	p := positionOf(view(t, e, "alice"), btcUSD)
	if p.HighWaterMark != 4_000 || p.Drawdown != 0 {
		t.Fatalf("peak: %+v", p)
	}
	trade(t, e, "carol", "bob", 10_500, 1, t0) // others trade lower: alice's equity 3×105 − 320 = −5.00
	p = positionOf(view(t, e, "alice"), btcUSD)
	if p.Equity != -500 || p.Drawdown != 4_500 || p.HighWaterMark != 4_000 {
		t.Fatalf("after the drop: %+v", p)
	}
	must(t, e.SetLimits(LimitsChange{Account: "alice", Symbol: btcUSD, Limits: Limits{MaxDrawdown: 4_500}}, nil))
	if _, r := e.CheckOrder(order("alice", SideBuy, 10_500, 1)); r != RejectMaxDrawdown {
		t.Fatalf("buy in drawdown: %v", r)
	}
	id := mustAccept(t, e, order("alice", SideSell, 10_500, 1)) // reduces: allowed
	must(t, e.Release(id))
	must(t, e.SetLimits(LimitsChange{Account: "alice", Symbol: btcUSD, Limits: Limits{MaxDrawdown: 4_501}}, nil))
	must(t, e.Release(mustAccept(t, e, order("alice", SideBuy, 10_500, 1))))

	// The override replaced the defaults for BTC-USD only; clearing it restores them.
	must(t, e.SetLimits(LimitsChange{Account: "alice", Limits: Limits{MaxDrawdown: 1}}, nil))
	must(t, e.Release(mustAccept(t, e, order("alice", SideBuy, 10_500, 1))))
	must(t, e.SetLimits(LimitsChange{Account: "alice", Symbol: btcUSD, Clear: true}, nil))
	if _, r := e.CheckOrder(order("alice", SideBuy, 10_500, 1)); r != RejectMaxDrawdown {
		t.Fatalf("after clearing the override: %v", r)
	}
}

func TestReduceOnlyCountsOpenOrders(t *testing.T) {
	e := newFixture(t, Config{})
	fund(t, e, "alice", 10_000_000, 0)
	fund(t, e, "bob", 10_000_000, 100)
	trade(t, e, "alice", "bob", 10_000, 5, t0) // alice long 5
	ro := func(side Side, qty int64) OrderCheck {
		c := order("alice", side, 10_000, qty)
		c.ReduceOnly = true
		return c
	}
	first := mustAccept(t, e, ro(SideSell, 3))
	if _, r := e.CheckOrder(ro(SideSell, 3)); r != RejectReduceOnly {
		t.Fatalf("3 + 3 against a position of 5: %v", r)
	}
	mustAccept(t, e, ro(SideSell, 2))
	if _, r := e.CheckOrder(ro(SideBuy, 1)); r != RejectReduceOnly {
		t.Fatalf("buy on a long position: %v", r)
	}
	must(t, e.Release(first))
	mustAccept(t, e, ro(SideSell, 3))

	// The state does the same for orders that do not ask for it.
	must(t, e.SetTradingState(TradingStateChange{Account: "alice", State: TradingReduceOnly}, nil))
	if _, r := e.CheckOrder(order("alice", SideBuy, 10_000, 1)); r != RejectReduceOnly {
		t.Fatalf("buy in reduce-only state: %v", r)
	}
	// Bob is short 5 and can still buy it back.
	must(t, e.SetTradingState(TradingStateChange{Account: "bob", State: TradingReduceOnly}, nil))
	mustAccept(t, e, order("bob", SideBuy, 10_000, 5))
	if _, r := e.CheckOrder(order("bob", SideBuy, 10_000, 1)); r != RejectReduceOnly {
		t.Fatalf("buying past flat: %v", r)
	}
}

func TestKillSwitchGlobalAndAccount(t *testing.T) {
	e := newFixture(t, Config{})
	fund(t, e, "alice", 10_000_000, 10)
	fund(t, e, "bob", 10_000_000, 10)
	state := func(account string, s TradingState) {
		must(t, e.SetTradingState(TradingStateChange{Account: account, State: s}, nil))
	}
	expect := func(acct string, want Reject) {
		t.Helper()
		id, r := e.CheckOrder(order(acct, SideBuy, 10_000, 1))
		if r != want {
			t.Fatalf("%s: %v, want %v", acct, r, want)
		}
		if id != 0 {
			must(t, e.Release(id))
		}
	}
	state("alice", TradingHalted)
	expect("alice", RejectHalted)
	expect("bob", Accepted)

	state("", TradingHalted)
	expect("alice", RejectHalted)
	expect("bob", RejectHalted)

	state("alice", TradingActive)
	expect("alice", RejectHalted) // the global switch still holds

	state("", TradingReduceOnly)
	expect("alice", RejectReduceOnly)
	state("bob", TradingHalted)
	expect("bob", RejectHalted) // the stricter one wins

	state("", TradingActive)
	expect("alice", Accepted)
	expect("bob", RejectHalted)
	if e.GlobalTradingState() != TradingActive || view(t, e, "bob").State != TradingHalted {
		t.Fatal("states not reported")
	}
	wantKind(t, e.SetTradingState(TradingStateChange{State: 7}, nil), errs.KindInvalidArgument)
	wantKind(t, e.SetTradingState(TradingStateChange{Account: "nobody", State: TradingHalted}, nil), errs.KindNotFound)
}

func TestTokenBucketRefill(t *testing.T) {
	e := newFixture(t, Config{})
	fund(t, e, "alice", 100_000_000, 0)
	must(t, e.SetLimits(LimitsChange{Account: "alice", Limits: Limits{OrderRate: Rate{PerSecond: 2, Burst: 3}}}, nil))
	try := func(now int64) Reject {
		c := order("alice", SideBuy, 10_000, 1)
		c.Now = now
		id, r := e.CheckOrder(c)
		if id != 0 {
			must(t, e.Release(id))
		}
		return r
	}
	expect := func(now int64, want ...Reject) {
		t.Helper()
		for i, w := range want {
			if got := try(now); got != w {
				t.Fatalf("attempt %d at +%v: %v, want %v", i, time.Duration(now-t0), got, w)
			}
		}
	}
	expect(t0, Accepted, Accepted, Accepted, RejectOrderRate) // burst of 3
	expect(at(t0, 499*time.Millisecond), RejectOrderRate)     // 0.998 tokens
	expect(at(t0, 500*time.Millisecond), Accepted, RejectOrderRate)
	expect(at(t0, 400*time.Millisecond), RejectOrderRate) // time going back adds nothing
	expect(at(t0, time.Hour), Accepted, Accepted, Accepted, RejectOrderRate)
	expect(1<<62, Accepted) // a huge jump neither overflows nor exceeds the burst
	expect(1<<62, Accepted, Accepted, RejectOrderRate)

	// Changing the rate starts a full bucket; removing it lifts the limit.
	must(t, e.SetLimits(LimitsChange{Account: "alice", Limits: Limits{OrderRate: Rate{PerSecond: 1, Burst: 1}}}, nil))
	expect(1<<62, Accepted, RejectOrderRate)
	must(t, e.SetLimits(LimitsChange{Account: "alice"}, nil))
	expect(1<<62, Accepted, Accepted, Accepted, Accepted)
}

func TestLimitsValidation(t *testing.T) {
	e := newFixture(t, Config{})
	fund(t, e, "alice", 0, 0)
	for _, c := range []LimitsChange{
		{Account: "alice", Limits: Limits{MaxDailyLoss: -1}},
		{Account: "alice", Limits: Limits{OrderRate: Rate{PerSecond: 5}}}, // no burst
		{Account: "alice", Limits: Limits{OrderRate: Rate{PerSecond: maxRate + 1, Burst: 1}}},
		{Account: "alice", Limits: Limits{OrderRate: Rate{PerSecond: 1, Burst: 1 << 62}}}, // nano-tokens overflow
		{Account: "alice", Symbol: btcUSD, Limits: Limits{OrderRate: Rate{PerSecond: 1, Burst: 1}}},
		{Account: "alice", Clear: true},
		{Account: "alice", Symbol: btcUSD, Clear: true, Limits: Limits{MaxPosition: 1}},
	} {
		wantKind(t, e.SetLimits(c, nil), errs.KindInvalidArgument)
	}
	wantKind(t, e.SetLimits(LimitsChange{Account: "bob"}, nil), errs.KindNotFound)
	wantKind(t, e.SetLimits(LimitsChange{Account: "alice", Symbol: "X"}, nil), errs.KindNotFound)
}
