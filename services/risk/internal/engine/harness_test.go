package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// The random walk behind the property test and the fuzz target: a small market whose symbols have
// different scale arithmetic, a few accounts, and operations chosen by a chooser. After every step
// the invariants are checked, and a failed operation must have changed nothing. At the end the
// persisted events are replayed into a fresh engine, which must come out identical.

// chooser supplies the walk's decisions.
type chooser interface {
	intn(n int) int // uniform-ish in [0, n), n > 0
	done() bool
}

type randChooser struct{ r *rand.Rand }

func (c randChooser) intn(n int) int { return c.r.IntN(n) }
func (c randChooser) done() bool     { return false }

// byteChooser turns fuzzer input into decisions; once the bytes run out every answer is 0.
type byteChooser struct{ b []byte }

func (c *byteChooser) intn(n int) int {
	var v uint64
	for need := uint64(n - 1); need > 0 && len(c.b) > 0; need >>= 8 {
		v = v<<8 | uint64(c.b[0])
		c.b = c.b[1:]
	}
	return int(v % uint64(n))
}

func (c *byteChooser) done() bool { return len(c.b) == 0 }

var (
	walkAccounts = []string{"a", "b", "c", "d"}
	walkAssets   = []Asset{{ID: "USD", Scale: 2}, {ID: "BTC", Scale: 8}, {ID: "ETH", Scale: 6}}
	walkSymbols  = []SymbolSpec{
		// notional = price × qty, base = qty × 10^8
		{ID: "BTC-USD", Base: "BTC", Quote: "USD", PriceScale: 2, QtyScale: 0, TakerFeePPM: 1_000, ReferencePrice: 10_000},
		// notional = price × qty × 10, base = qty × 10^3
		{ID: "ETH-BTC", Base: "ETH", Quote: "BTC", PriceScale: 4, QtyScale: 3, TakerFeePPM: 2_500, ReferencePrice: 500},
		// notional = price × qty, base = qty × 10^5, no fee
		{ID: "ETH-USD", Base: "ETH", Quote: "USD", PriceScale: 1, QtyScale: 1, TakerFeePPM: 0, ReferencePrice: 300},
	}
	walkMaxQty    = map[string]int{"BTC-USD": 5, "ETH-BTC": 5_000, "ETH-USD": 50}
	walkMaxCredit = map[string]int{"USD": 2_000_000, "BTC": 500_000_000, "ETH": 5_000_000}
	walkConfig    = Config{DailyCutoff: 22 * time.Hour, FeeAccount: "house"}
)

type harness struct {
	t      testing.TB
	e      *Engine
	pick   chooser
	now    int64
	serial int

	state walkState // everything observable, as of the end of the last step

	events   []Event // what the store holds, after a JSON round trip
	failNext bool    // the next persist call fails

	credited, debited, fees map[string]int64 // by asset
	transfers               []pastTransfer
	applied                 []Execution
}

type pastTransfer struct {
	kind EventKind
	tr   Transfer
}

func newHarness(t testing.TB, pick chooser) *harness {
	t.Helper()
	h := &harness{t: t, pick: pick, now: t0,
		credited: map[string]int64{}, debited: map[string]int64{}, fees: map[string]int64{}}
	var err error
	h.e, err = New(walkConfig)
	must(t, err)
	for _, a := range walkAssets {
		must(t, h.e.DefineAsset(a, h.persist))
	}
	for _, s := range walkSymbols {
		must(t, h.e.DefineSymbol(s, h.persist))
	}
	for _, id := range walkAccounts {
		must(t, h.e.OpenAccount(AccountSpec{ID: id}, h.persist))
		for _, a := range walkAssets {
			h.serial++
			amount := int64(walkMaxCredit[a.ID])
			_, err := h.e.Credit(Transfer{Account: id, Asset: a.ID, Amount: amount, Ref: fmt.Sprintf("seed-%d", h.serial)}, h.persist)
			must(t, err)
			h.credited[a.ID] += amount
		}
	}
	h.state = h.snapshot()
	return h
}

func (h *harness) persist(ev Event) error {
	if h.failNext {
		h.failNext = false
		return errors.New("store unavailable")
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		h.t.Fatalf("event %d does not marshal: %v", ev.Seq, err)
	}
	var back Event
	if err := json.Unmarshal(raw, &back); err != nil {
		h.t.Fatalf("event %d does not unmarshal: %v", ev.Seq, err)
	}
	if !reflect.DeepEqual(ev, back) {
		h.t.Fatalf("event %d changes in a JSON round trip:\n%+v\n%+v", ev.Seq, ev, back)
	}
	h.events = append(h.events, back)
	return nil
}

func (h *harness) run(steps int) {
	for i := 0; i < steps && !h.pick.done(); i++ {
		h.step()
	}
	h.checkReplay()
}

func (h *harness) step() {
	h.t.Helper()
	h.now += int64(h.pick.intn(4*3600)) * int64(time.Second) // crosses the daily cutoff now and then
	h.failNext = h.pick.intn(25) == 0
	before := h.state
	var err error
	op := h.pick.intn(100)
	switch {
	case op < 10:
		err = h.credit()
	case op < 18:
		err = h.debit()
	case op < 50:
		h.check()
	case op < 60:
		err = h.release()
	case op < 85:
		err = h.fill()
	case op < 90:
		err = h.badFill()
	case op < 95:
		err = h.setLimits()
	default:
		err = h.setState()
	}
	h.failNext = false
	h.state = h.snapshot()
	if err != nil && !reflect.DeepEqual(before, h.state) {
		h.t.Fatalf("op %d failed with %v but changed state:\nbefore %+v\nafter  %+v", op, err, before, h.state)
	}
	h.checkInvariants()
}

// accountView returns an account as of the start of the step.
func (h *harness) accountView(id string) AccountView {
	for _, v := range h.state.Accounts {
		if v.ID == id {
			return v
		}
	}
	h.t.Fatalf("no account %q", id)
	return AccountView{}
}

// expectPersistOutcome checks that a call whose write the store refused reports it.
func (h *harness) expectPersistOutcome(wantFail bool, err error) {
	h.t.Helper()
	if wantFail && !h.failNext && errs.KindOf(err) != errs.KindUnavailable {
		h.t.Fatalf("the store failed but the call returned %v", err)
	}
}

func (h *harness) account() string {
	if h.pick.intn(40) == 0 {
		return "ghost"
	}
	return walkAccounts[h.pick.intn(len(walkAccounts))]
}

func (h *harness) credit() error {
	if len(h.transfers) > 0 && h.pick.intn(6) == 0 {
		past := h.transfers[h.pick.intn(len(h.transfers))]
		tr, altered := past.tr, h.pick.intn(2) == 0
		if altered {
			tr.Amount++
		}
		call := h.e.Credit
		if past.kind == EventDebit {
			call = h.e.Debit
		}
		res, err := call(tr, h.persist)
		switch {
		case altered && errs.KindOf(err) != errs.KindAlreadyExists:
			h.t.Fatalf("reused ref with new content: %v", err)
		case !altered && (err != nil || !res.Duplicate):
			h.t.Fatalf("repeated transfer: %+v, %v", res, err)
		}
		return err
	}
	a := walkAssets[h.pick.intn(len(walkAssets))].ID
	h.serial++
	tr := Transfer{Account: h.account(), Asset: a, Amount: 1 + int64(h.pick.intn(walkMaxCredit[a])), Ref: fmt.Sprintf("t%d", h.serial)}
	wantFail := h.failNext
	_, err := h.e.Credit(tr, h.persist)
	h.expectPersistOutcome(wantFail, err)
	if err == nil {
		h.credited[a] += tr.Amount
		h.transfers = append(h.transfers, pastTransfer{EventCredit, tr})
	}
	return err
}

func (h *harness) debit() error {
	acct := walkAccounts[h.pick.intn(len(walkAccounts))]
	a := walkAssets[h.pick.intn(len(walkAssets))].ID
	free := balanceOf(h.accountView(acct), a).Available
	h.serial++
	tr := Transfer{Account: acct, Asset: a, Amount: 1 + int64(h.pick.intn(int(free*5/4)+1)), Ref: fmt.Sprintf("t%d", h.serial)}
	wantFail := h.failNext
	_, err := h.e.Debit(tr, h.persist)
	switch {
	case tr.Amount > free && errs.KindOf(err) != errs.KindFailedPrecondition:
		h.t.Fatalf("debit of %d with %d available: %v", tr.Amount, free, err)
	case tr.Amount <= free:
		h.expectPersistOutcome(wantFail, err)
	}
	if err == nil {
		h.debited[a] += tr.Amount
		h.transfers = append(h.transfers, pastTransfer{EventDebit, tr})
	}
	return err
}

func (h *harness) symbol() SymbolSpec { return walkSymbols[h.pick.intn(len(walkSymbols))] }

func (h *harness) check() {
	spec := h.symbol()
	ref := spec.ReferencePrice
	for _, sv := range h.state.Symbols {
		if sv.ID == spec.ID {
			ref = cmpOr(sv.MarkPrice, ref)
		}
	}
	c := OrderCheck{
		Account:    h.account(),
		Symbol:     spec.ID,
		Side:       Side(1 + h.pick.intn(2)),
		Type:       OrderType(1 + h.pick.intn(2)),
		Price:      max(1, ref*int64(80+h.pick.intn(41))/100),
		Qty:        1 + int64(h.pick.intn(walkMaxQty[spec.ID])),
		ReduceOnly: h.pick.intn(10) == 0,
		Now:        h.now,
	}
	switch h.pick.intn(30) {
	case 0:
		c.Qty = 0
	case 1:
		c.Qty = 1 << 60
	case 2:
		c.Symbol = "ghost"
	}
	id, r := h.e.CheckOrder(c)
	if (id != 0) != (r == Accepted) {
		h.t.Fatalf("CheckOrder returned id %d with %v", id, r)
	}
	if r != Accepted {
		return
	}
	v := view(h.t, h.e, c.Account)
	i := slices.IndexFunc(v.Reservations, func(r ReservationView) bool { return r.ID == id })
	if i < 0 {
		h.t.Fatalf("accepted reservation %d not in the view", id)
	}
	if got, want := v.Reservations[i].Amount, expectedReserve(spec, c.Side, c.Price, c.Qty); got != want {
		h.t.Fatalf("reservation %+v holds %d, want %d", v.Reservations[i], got, want)
	}
}

func cmpOr(a, b int64) int64 {
	if a != 0 {
		return a
	}
	return b
}

type openReservation struct {
	ReservationView
	account string
}

// openReservations lists the reservations open at the start of the step.
func (h *harness) openReservations() []openReservation {
	var out []openReservation
	for _, v := range h.state.Accounts {
		for _, r := range v.Reservations {
			out = append(out, openReservation{r, v.ID})
		}
	}
	return out
}

func (h *harness) release() error {
	open := h.openReservations()
	if len(open) == 0 || h.pick.intn(8) == 0 {
		err := h.e.Release(uint64(1e12 + h.pick.intn(1000)))
		if errs.KindOf(err) != errs.KindNotFound {
			h.t.Fatalf("release of an unknown id: %v", err)
		}
		return err
	}
	r := open[h.pick.intn(len(open))]
	if err := h.e.Release(r.ID); err != nil {
		h.t.Fatalf("release of open reservation %d: %v", r.ID, err)
	}
	return nil
}

// crossing picks an open buy and sell on the same symbol that can trade (buy limit >= sell limit).
func (h *harness) crossing() (buy, sell openReservation, ok bool) {
	open := h.openReservations()
	var pairs [][2]openReservation
	for _, b := range open {
		for _, s := range open {
			if b.Side == SideBuy && s.Side == SideSell && b.Symbol == s.Symbol && b.Price >= s.Price {
				pairs = append(pairs, [2]openReservation{b, s})
			}
		}
	}
	if len(pairs) == 0 {
		return buy, sell, false
	}
	p := pairs[h.pick.intn(len(pairs))]
	return p[0], p[1], true
}

func specOf(id string) SymbolSpec {
	return walkSymbols[slices.IndexFunc(walkSymbols, func(s SymbolSpec) bool { return s.ID == id })]
}

func (h *harness) fill() error {
	buy, sell, ok := h.crossing()
	if !ok {
		return nil
	}
	spec := specOf(buy.Symbol)
	qty := 1 + int64(h.pick.intn(int(min(buy.Qty, sell.Qty))))
	price := sell.Price + int64(h.pick.intn(int(buy.Price-sell.Price+1)))
	notional := expectedNotional(spec, price, qty)
	maxFee := ceilPPM(notional, spec.TakerFeePPM)
	buyFee := min(notional, int64(h.pick.intn(int(maxFee)+2))) // may exceed the reserve by one
	sellFee := int64(h.pick.intn(int(maxFee) + 1))
	h.serial++
	batch := []Execution{
		{ExecID: fmt.Sprintf("x%d-b", h.serial), ReservationID: buy.ID, Account: buy.account, Symbol: spec.ID, Side: SideBuy, Price: price, Qty: qty, Fee: buyFee, Time: h.now},
		{ExecID: fmt.Sprintf("x%d-s", h.serial), ReservationID: sell.ID, Account: sell.account, Symbol: spec.ID, Side: SideSell, Price: price, Qty: qty, Fee: sellFee, Time: h.now},
	}
	if h.pick.intn(2) == 0 {
		batch[0], batch[1] = batch[1], batch[0]
	}
	dups := 0
	if len(h.applied) > 0 && h.pick.intn(5) == 0 {
		batch = append(batch, h.applied[h.pick.intn(len(h.applied))])
		dups = 1
	}
	wantFail := h.failNext
	res, err := h.e.ApplyExecutions(batch, h.persist)
	switch {
	case err == nil:
		if res.Applied != 2 || res.Duplicates != dups {
			h.t.Fatalf("batch result %+v, want 2 applied and %d duplicates", res, dups)
		}
		h.fees[spec.Quote] += buyFee + sellFee
		h.applied = append(h.applied, batch[:2]...)
	case errs.KindOf(err) == errs.KindFailedPrecondition && buyFee > 0:
		// The buyer could not pay a fee above the reserve out of free funds.
	default:
		h.expectPersistOutcome(wantFail, err)
		if !wantFail {
			h.t.Fatalf("valid batch %+v refused: %v", batch, err)
		}
	}
	return err
}

func (h *harness) badFill() error {
	open := h.openReservations()
	h.serial++
	x := Execution{ExecID: fmt.Sprintf("bad%d", h.serial), ReservationID: uint64(1e12), Account: "a", Symbol: "BTC-USD", Side: SideBuy, Price: 10_000, Qty: 1, Time: h.now}
	if len(open) > 0 {
		r := open[h.pick.intn(len(open))]
		x = Execution{ExecID: x.ExecID, ReservationID: r.ID, Account: r.account, Symbol: r.Symbol, Side: r.Side, Price: r.Price, Qty: r.Qty, Time: h.now}
		switch h.pick.intn(4) {
		case 0:
			x.ReservationID = uint64(1e12)
		case 1: // worse than the limit
			if x.Side == SideBuy {
				x.Price++
			} else if x.Price--; x.Price == 0 {
				x.Qty++
			}
		case 2:
			x.Qty++
		case 3:
			if len(h.applied) > 0 {
				x = h.applied[h.pick.intn(len(h.applied))]
				x.Fee++
			} else {
				x.Side = 3 - x.Side
			}
		}
	}
	_, err := h.e.ApplyExecutions([]Execution{x}, h.persist)
	if err == nil {
		h.t.Fatalf("invalid execution %+v accepted", x)
	}
	return err
}

func (h *harness) setLimits() error {
	c := LimitsChange{Account: h.account()}
	if h.pick.intn(2) == 0 {
		c.Symbol = h.symbol().ID
	}
	if c.Symbol != "" && h.pick.intn(4) == 0 {
		c.Clear = true
	} else if h.pick.intn(2) == 0 {
		c.Limits = Limits{
			MaxPosition:      int64(h.pick.intn(20_000)),
			MaxDailyLoss:     int64(h.pick.intn(100_000)),
			MaxDrawdown:      int64(h.pick.intn(100_000)),
			MaxOrderNotional: int64(h.pick.intn(1_000_000)),
			PriceBandPPM:     int64(h.pick.intn(300_000)),
		}
		if c.Symbol == "" && h.pick.intn(3) == 0 {
			c.Limits.OrderRate = Rate{PerSecond: 1 + int64(h.pick.intn(10)), Burst: 1 + int64(h.pick.intn(10))}
		}
	}
	wantFail := h.failNext
	err := h.e.SetLimits(c, h.persist)
	if c.Account != "ghost" {
		h.expectPersistOutcome(wantFail, err)
		if err != nil && !wantFail {
			h.t.Fatalf("SetLimits(%+v): %v", c, err)
		}
	}
	return err
}

func (h *harness) setState() error {
	c := TradingStateChange{}
	if h.pick.intn(5) > 0 {
		c.Account = h.account()
	}
	if h.pick.intn(4) == 0 { // mostly switching back on, so the walk keeps trading
		c.State = TradingState(1 + h.pick.intn(2))
	}
	return h.e.SetTradingState(c, h.persist)
}

// walkState is everything observable, for "a failed operation changed nothing".
type walkState struct {
	Seq      uint64
	Global   TradingState
	Symbols  []SymbolView
	Accounts []AccountView
}

func (h *harness) snapshot() walkState {
	s := walkState{Seq: h.e.LastSeq(), Global: h.e.GlobalTradingState(), Symbols: h.e.Symbols()}
	for _, id := range h.e.AccountIDs() {
		s.Accounts = append(s.Accounts, view(h.t, h.e, id))
	}
	return s
}

// checkInvariants checks h.state, the state after the last operation.
func (h *harness) checkInvariants() {
	h.t.Helper()
	totals := map[string]int64{}
	netPosition := map[string]int64{}
	for _, v := range h.state.Accounts {
		reserved := map[string]int64{}
		open := map[string][2]int64{}
		for _, r := range v.Reservations {
			if r.Qty <= 0 || r.Amount < 0 {
				h.t.Fatalf("%s: reservation %+v", v.ID, r)
			}
			if want := expectedReserve(specOf(r.Symbol), r.Side, r.Price, r.Qty); r.Amount != want {
				h.t.Fatalf("%s: reservation %+v holds %d for its remaining lots, want %d", v.ID, r, r.Amount, want)
			}
			reserved[r.Asset] += r.Amount
			o := open[r.Symbol]
			o[r.Side-1] += r.Qty
			open[r.Symbol] = o
		}
		for _, b := range v.Balances {
			if b.Total < 0 || b.Reserved < 0 || b.Available < 0 || b.Available != b.Total-b.Reserved {
				h.t.Fatalf("%s: balance %+v", v.ID, b)
			}
			if b.Reserved != reserved[b.Asset] {
				h.t.Fatalf("%s: %s reserved %d but open reservations hold %d", v.ID, b.Asset, b.Reserved, reserved[b.Asset])
			}
			delete(reserved, b.Asset)
			totals[b.Asset] += b.Total
		}
		for a, n := range reserved {
			if n != 0 {
				h.t.Fatalf("%s: reservations hold %d %s with no balance", v.ID, n, a)
			}
		}
		for _, p := range v.Positions {
			if p.OpenBuyQty != open[p.Symbol][0] || p.OpenSellQty != open[p.Symbol][1] {
				h.t.Fatalf("%s: position %+v, open orders %v", v.ID, p, open[p.Symbol])
			}
			if (p.Qty == 0) != (p.CostBasis == 0) || p.CostBasis < 0 || p.Drawdown < 0 || p.HighWaterMark < 0 {
				h.t.Fatalf("%s: position %+v", v.ID, p)
			}
			netPosition[p.Symbol] += p.Qty
			delete(open, p.Symbol)
		}
		if len(open) != 0 {
			h.t.Fatalf("%s: open orders %v without a position", v.ID, open)
		}
		if v.ID == walkConfig.FeeAccount {
			for _, b := range v.Balances {
				if b.Total != h.fees[b.Asset] {
					h.t.Fatalf("fee account holds %d %s, fees charged %d", b.Total, b.Asset, h.fees[b.Asset])
				}
			}
		}
	}
	// Money is conserved: trades only move it between accounts and to the fee account.
	for _, a := range walkAssets {
		if want := h.credited[a.ID] - h.debited[a.ID]; totals[a.ID] != want {
			h.t.Fatalf("%s: accounts hold %d, credits − debits = %d", a.ID, totals[a.ID], want)
		}
	}
	for s, n := range netPosition {
		if n != 0 {
			h.t.Fatalf("%s: positions sum to %d", s, n)
		}
	}
}

// checkReplay rebuilds a fresh engine from the stored events plus the open reservations and requires
// it to match the original exactly.
func (h *harness) checkReplay() {
	h.t.Helper()
	fresh, err := New(walkConfig)
	must(h.t, err)
	for _, ev := range h.events {
		if err := fresh.Apply(ev); err != nil {
			h.t.Fatalf("replay: %v", err)
		}
	}
	for _, r := range h.openReservations() {
		must(h.t, fresh.RestoreReservation(RestoredReservation{ID: r.ID, Account: r.account, Symbol: r.Symbol, Side: r.Side, Price: r.Price, Qty: r.Qty}))
	}
	want, got := h.snapshot(), (&harness{t: h.t, e: fresh}).snapshot()
	if !reflect.DeepEqual(want, got) {
		for i := range want.Accounts {
			if i < len(got.Accounts) && !reflect.DeepEqual(want.Accounts[i], got.Accounts[i]) {
				h.t.Fatalf("replayed account differs:\nwant %+v\ngot  %+v", want.Accounts[i], got.Accounts[i])
			}
		}
		h.t.Fatalf("replayed engine differs:\nwant %+v\ngot  %+v", want, got)
	}
	if !maps.Equal(h.e.execs, fresh.execs) || !maps.Equal(h.e.refs, fresh.refs) {
		h.t.Fatal("replay lost idempotency records")
	}
}

// expectedNotional recomputes a notional with math/big, independently of the engine's arithmetic.
func expectedNotional(spec SymbolSpec, price, qty int64) int64 {
	quote := walkAssetScale(spec.Quote)
	n := new(big.Int).Mul(big.NewInt(price), big.NewInt(qty))
	n.Mul(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(quote)-int64(spec.PriceScale)-int64(spec.QtyScale)), nil))
	return n.Int64()
}

func expectedReserve(spec SymbolSpec, side Side, price, qty int64) int64 {
	if side == SideSell {
		return qty * pow10[walkAssetScale(spec.Base)-int(spec.QtyScale)]
	}
	n := expectedNotional(spec, price, qty)
	fee := new(big.Int).Mul(big.NewInt(n), big.NewInt(spec.TakerFeePPM))
	fee.Add(fee, big.NewInt(ppm-1))
	fee.Quo(fee, big.NewInt(ppm))
	return n + fee.Int64()
}

func walkAssetScale(id string) int {
	return int(walkAssets[slices.IndexFunc(walkAssets, func(a Asset) bool { return a.ID == id })].Scale)
}
