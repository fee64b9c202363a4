package engine

import (
	"cmp"
	"slices"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// AccountView is a copy of an account's state; holding it does not hold any lock.
type AccountView struct {
	ID     string
	State  TradingState // the account's own kill switch; see GlobalTradingState for the engine's
	Limits Limits       // account-wide defaults
	// Balances lists every asset with a non-zero total or reservation, sorted by asset id.
	Balances []BalanceView
	// Positions lists every symbol the account has traded, has orders in or has limits for, sorted
	// by symbol id.
	Positions []PositionView
	// Reservations lists open reservations, sorted by id.
	Reservations []ReservationView
}

// BalanceView is one asset of an account, in asset units.
type BalanceView struct {
	Asset     string
	Total     int64
	Reserved  int64
	Available int64
}

// PositionView is an account's state in one symbol. Money is in the symbol's quote units.
type PositionView struct {
	Symbol string
	Qty    int64 // signed lots
	// AvgPrice is the average entry price in ticks, rounded down; CostBasis is the exact quote amount
	// the open lots cost (long) or were sold for (short).
	AvgPrice      int64
	CostBasis     int64
	RealisedPnL   int64 // before fees
	FeesPaid      int64
	MarkPrice     int64 // last trade, 0 before any
	UnrealisedPnL int64 // at MarkPrice
	Equity        int64 // RealisedPnL − FeesPaid + UnrealisedPnL
	HighWaterMark int64
	Drawdown      int64 // HighWaterMark − Equity, at least 0
	// DailyPnL is realised PnL less fees in the trading day starting at TradingDayStart (unix ns).
	DailyPnL        int64
	TradingDayStart int64
	OpenBuyQty      int64 // lots in open buy reservations
	OpenSellQty     int64
	Limits          Limits // the limits in force for this symbol
	LimitsOverride  bool   // whether Limits is a symbol override rather than the account defaults
}

// ReservationView is an open reservation.
type ReservationView struct {
	ID     uint64
	Symbol string
	Side   Side
	Price  int64 // limit or protection price, ticks
	Qty    int64 // lots still open
	Asset  string
	Amount int64 // locked, in Asset units
}

// Account returns a copy of the account's state, or a KindNotFound error.
func (e *Engine) Account(id string) (AccountView, error) {
	acct, err := e.lookupAccount("account", id)
	if err != nil {
		return AccountView{}, err
	}
	acct.mu.Lock()
	defer acct.mu.Unlock()
	// Load the catalog under the lock: every asset or symbol the account refers to was published
	// before the change that made the account refer to it, so this catalog knows them all.
	cat := e.catalog.Load()

	v := AccountView{ID: acct.id, State: acct.state, Limits: acct.limits}
	for i, b := range acct.balances {
		if b.total != 0 || b.reserved != 0 {
			v.Balances = append(v.Balances, BalanceView{Asset: cat.assetList[i].ID, Total: b.total, Reserved: b.reserved, Available: b.available()})
		}
	}
	slices.SortFunc(v.Balances, func(a, b BalanceView) int { return cmp.Compare(a.Asset, b.Asset) })

	for i, p := range acct.positions {
		if p == nil || p.blank() {
			continue
		}
		v.Positions = append(v.Positions, e.positionView(cat.symbolList[i], p, acct.limits))
	}
	slices.SortFunc(v.Positions, func(a, b PositionView) int { return cmp.Compare(a.Symbol, b.Symbol) })

	for _, r := range acct.reservations {
		if r.live {
			v.Reservations = append(v.Reservations, ReservationView{
				ID: r.id, Symbol: r.symbol.spec.ID, Side: r.side, Price: r.price, Qty: r.qty,
				Asset: r.symbol.reservedAsset(r.side).ID, Amount: r.amount,
			})
		}
	}
	slices.SortFunc(v.Reservations, func(a, b ReservationView) int { return cmp.Compare(a.ID, b.ID) })
	return v, nil
}

func (e *Engine) positionView(s *symbol, p *position, defaults Limits) PositionView {
	mark := s.mark.Load()
	v := PositionView{
		Symbol:          s.spec.ID,
		Qty:             p.qty,
		CostBasis:       p.cost,
		RealisedPnL:     p.realised,
		FeesPaid:        p.fees,
		MarkPrice:       mark,
		UnrealisedPnL:   p.unrealised(s, mark),
		Equity:          p.equity(s, mark),
		HighWaterMark:   p.hwm,
		Drawdown:        p.drawdown(s, mark),
		DailyPnL:        p.dayPnL,
		TradingDayStart: e.dayStart(p.day),
		OpenBuyQty:      p.openBuy,
		OpenSellQty:     p.openSell,
		Limits:          defaults,
	}
	if p.hasLimits {
		v.Limits, v.LimitsOverride = p.limits, true
	}
	if p.qty != 0 {
		lots := p.qty
		if lots < 0 {
			lots = -lots
		}
		// floor(floor(cost/lots)/mul) = floor(cost/(lots·mul)) without forming a product that could
		// overflow.
		v.AvgPrice = p.cost / lots / s.notionalMul
	}
	return v
}

// SymbolView is a symbol's configuration and market state.
type SymbolView struct {
	SymbolSpec
	MarkPrice int64 // last trade price in ticks, 0 before any trade
}

// Symbol returns a symbol's configuration and mark price, or a KindNotFound error.
func (e *Engine) Symbol(id string) (SymbolView, error) {
	s := e.catalog.Load().symbols[id]
	if s == nil {
		return SymbolView{}, errs.New(errs.KindNotFound, "unknown symbol %q", id)
	}
	return SymbolView{SymbolSpec: s.spec, MarkPrice: s.mark.Load()}, nil
}

// Symbols returns every symbol, sorted by id.
func (e *Engine) Symbols() []SymbolView {
	cat := e.catalog.Load()
	out := make([]SymbolView, 0, len(cat.symbolList))
	for _, s := range cat.symbolList {
		out = append(out, SymbolView{SymbolSpec: s.spec, MarkPrice: s.mark.Load()})
	}
	slices.SortFunc(out, func(a, b SymbolView) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Assets returns every asset, sorted by id.
func (e *Engine) Assets() []Asset {
	cat := e.catalog.Load()
	out := make([]Asset, 0, len(cat.assetList))
	for _, a := range cat.assetList {
		out = append(out, a.Asset)
	}
	slices.SortFunc(out, func(a, b Asset) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// AccountIDs returns the ids of every account, the fee account included, in creation order.
func (e *Engine) AccountIDs() []string {
	list := e.accounts.all()
	out := make([]string, len(list))
	for i, a := range list {
		out[i] = a.id
	}
	return out
}
