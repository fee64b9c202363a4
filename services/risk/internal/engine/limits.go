package engine

import (
	"math"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// Limits are the risk limits of an account, either its account-wide defaults or an override for one
// symbol. Every field is an upper bound where 0 means "no limit", so the zero Limits allows
// everything. Amounts are in units of the symbol's quote asset; account-wide defaults apply to each
// symbol separately, in that symbol's quote units.
type Limits struct {
	// MaxPosition bounds |position| in lots in the worst case, i.e. if every open order on the side of
	// the new order fills.
	MaxPosition int64 `json:"max_position,omitempty"`
	// MaxDailyLoss stops opening or growing positions once today's realised loss, fees included,
	// reaches it. Orders that reduce the position are still allowed, so a trader can get flat.
	MaxDailyLoss int64 `json:"max_daily_loss,omitempty"`
	// MaxDrawdown works like MaxDailyLoss, on the drop of equity from its high-water mark.
	MaxDrawdown int64 `json:"max_drawdown,omitempty"`
	// MaxOrderNotional bounds price × qty of one order.
	MaxOrderNotional int64 `json:"max_order_notional,omitempty"`
	// PriceBandPPM rejects orders whose price is more than this many parts per million away from the
	// reference price (the last trade, or the symbol's configured reference before any trade).
	PriceBandPPM int64 `json:"price_band_ppm,omitempty"`
	// OrderRate limits how fast the account may submit orders, across all symbols. It is account-wide
	// only: a symbol override must leave it zero.
	OrderRate Rate `json:"order_rate,omitzero"`
}

// Rate is a token bucket: PerSecond tokens are added per second up to Burst, and each order checked
// takes one. PerSecond 0 disables the bucket.
type Rate struct {
	PerSecond int64 `json:"per_second,omitempty"`
	Burst     int64 `json:"burst,omitempty"`
}

// maxRate keeps token arithmetic (nano-tokens) far from overflow; a billion orders a second is
// beyond any real limit.
const maxRate = 1_000_000_000

func (l Limits) validate(field string, accountWide bool) error {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"max_position", l.MaxPosition},
		{"max_daily_loss", l.MaxDailyLoss},
		{"max_drawdown", l.MaxDrawdown},
		{"max_order_notional", l.MaxOrderNotional},
		{"price_band_ppm", l.PriceBandPPM},
		{"order_rate.per_second", l.OrderRate.PerSecond},
		{"order_rate.burst", l.OrderRate.Burst},
	} {
		if f.v < 0 {
			return errs.Invalid(field+"."+f.name, "must not be negative (0 means no limit)")
		}
	}
	switch r := l.OrderRate; {
	case !accountWide && r != Rate{}:
		return errs.Invalid(field+".order_rate", "is account-wide: set it on the account defaults, not on a symbol")
	case r.PerSecond > maxRate:
		return errs.Invalid(field+".order_rate.per_second", "must be at most %d", maxRate)
	case r.Burst > math.MaxInt64/tokenScale:
		return errs.Invalid(field+".order_rate.burst", "must be at most %d", math.MaxInt64/tokenScale)
	case r.PerSecond > 0 && r.Burst < 1:
		return errs.Invalid(field+".order_rate.burst", "must be at least 1 when a rate is set")
	}
	return nil
}

// LimitsChange sets the limits of an account: its defaults when Symbol is empty, otherwise an
// override for that symbol which replaces the defaults as a whole (fields are not merged). Clear
// with a Symbol removes the override so the defaults apply again.
type LimitsChange struct {
	Account string `json:"account"`
	Symbol  string `json:"symbol,omitempty"`
	Limits  Limits `json:"limits"`
	Clear   bool   `json:"clear,omitempty"`
}

// SetLimits changes limits. It takes effect for the next CheckOrder; open reservations stay.
func (e *Engine) SetLimits(c LimitsChange, persist PersistFunc) error {
	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	return e.setLimits(c, persist)
}

func (e *Engine) setLimits(c LimitsChange, persist PersistFunc) error {
	if c.Clear && c.Symbol == "" {
		return errs.Invalid("limits.clear", "needs a symbol: account defaults cannot be cleared, set them to zero")
	}
	if c.Clear && c.Limits != (Limits{}) {
		return errs.Invalid("limits.limits", "must be empty when clearing an override")
	}
	if err := c.Limits.validate("limits.limits", c.Symbol == ""); err != nil {
		return err
	}
	acct, err := e.lookupAccount("limits.account", c.Account)
	if err != nil {
		return err
	}
	var sym *symbol
	if c.Symbol != "" {
		if sym = e.catalog.Load().symbols[c.Symbol]; sym == nil {
			return errs.New(errs.KindNotFound, "limits.symbol: unknown symbol %q", c.Symbol)
		}
	}
	acct.mu.Lock()
	defer acct.mu.Unlock()
	ev := Event{Kind: EventSetLimits, Limits: &c}
	return e.commit(&ev, persist, func() {
		switch {
		case sym == nil:
			if acct.limits.OrderRate != c.Limits.OrderRate {
				acct.bucket = tokenBucket{} // start the new rate with a full bucket
			}
			acct.limits = c.Limits
		case c.Clear:
			if p := acct.positionOf(sym.index); p != nil {
				p.limits, p.hasLimits = Limits{}, false
			}
		default:
			p := acct.positionRef(sym.index)
			p.limits, p.hasLimits = c.Limits, true
		}
	})
}

// TradingStateChange flips a kill switch: the account's when Account is set, the global one when it
// is empty. The state that applies to an order is the stricter of the two.
type TradingStateChange struct {
	Account string       `json:"account,omitempty"`
	State   TradingState `json:"state"`
}

// SetTradingState changes a kill switch. Open reservations are not released: cancelling resting
// orders is the caller's move (it owns the orders), and each cancel then calls Release.
func (e *Engine) SetTradingState(c TradingStateChange, persist PersistFunc) error {
	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	return e.setTradingState(c, persist)
}

func (e *Engine) setTradingState(c TradingStateChange, persist PersistFunc) error {
	if !c.State.valid() {
		return errs.Invalid("trading_state.state", "unknown state %d", uint8(c.State))
	}
	ev := Event{Kind: EventSetTradingState, TradingState: &c}
	if c.Account == "" {
		return e.commit(&ev, persist, func() { e.global.Store(uint32(c.State)) })
	}
	acct, err := e.lookupAccount("trading_state.account", c.Account)
	if err != nil {
		return err
	}
	acct.mu.Lock()
	defer acct.mu.Unlock()
	return e.commit(&ev, persist, func() { acct.state = c.State })
}

// GlobalTradingState returns the engine-wide kill switch.
func (e *Engine) GlobalTradingState() TradingState { return TradingState(e.global.Load()) }
