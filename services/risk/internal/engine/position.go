package engine

import (
	"github.com/bourse-dev/bourse/pkg/errs"
)

// position is an account's state in one symbol. The durable part is changed only by executions (and
// limits by SetLimits) and is rebuilt by replaying events; openBuy and openSell mirror the open
// reservations and are rebuilt with them.
type position struct {
	qty int64 // signed lots: > 0 long, < 0 short
	// cost is the quote amount the open lots were bought for (long) or sold for (short), always >= 0
	// and 0 when flat. Keeping the exact total instead of an average price means realised PnL over a
	// full round trip is exact: the last closing fill takes whatever cost is left.
	cost     int64
	realised int64 // realised PnL in quote units, before fees
	fees     int64 // fees paid in quote units
	// day is the trading day (see Engine.dayIndex) dayPnL belongs to; dayPnL is realised PnL minus
	// fees within it. A later day starts from zero.
	day    int64
	dayPnL int64
	// hwm is the highest equity (realised − fees + unrealised) seen at this account's fills, starting
	// from 0.
	hwm int64

	limits    Limits // symbol override of the account defaults, when hasLimits
	hasLimits bool

	openBuy, openSell int64 // lots still open in reservations on each side

	_ [hotAlloc - 8]byte // openBuy/openSell change on every order: keep other positions' lines away
}

// zeroPosition stands in for an account that never touched a symbol. It is only read.
var zeroPosition position

// blank reports whether the position holds nothing worth showing: no trades, orders or limits. The
// trading day alone does not count, so an account that only ever had orders released looks the same
// as one rebuilt from the log.
func (p *position) blank() bool {
	q := *p
	q.day = 0
	return q == position{}
}

// unrealised is the PnL of the open lots at mark, saturated rather than wrapped: it is reported and
// compared, never stored.
func (p *position) unrealised(s *symbol, mark int64) int64 {
	if p.qty == 0 || mark <= 0 {
		return 0
	}
	if p.qty > 0 {
		value, ok := s.notional(mark, p.qty)
		if !ok {
			return satSub(maxInt64, p.cost)
		}
		return value - p.cost
	}
	value, ok := s.notional(mark, -p.qty)
	if !ok {
		return satSub(p.cost, maxInt64)
	}
	return p.cost - value
}

const maxInt64 = 1<<63 - 1

// equity is what the symbol has earned the account so far: realised PnL less fees plus unrealised PnL.
func (p *position) equity(s *symbol, mark int64) int64 {
	return satAdd(satSub(p.realised, p.fees), p.unrealised(s, mark))
}

// drawdown is how far equity at mark is below the high-water mark, never negative.
func (p *position) drawdown(s *symbol, mark int64) int64 {
	return max(0, satSub(p.hwm, p.equity(s, mark)))
}

// dailyLoss is today's realised loss including fees, 0 once today is past the day it was counted in.
func (p *position) dailyLoss(today int64) int64 {
	if today > p.day {
		return 0
	}
	return max(0, -p.dayPnL)
}

// reduces reports whether an order of qty on side can only shrink the position, counting open
// orders on the same side that would fill first.
func (p *position) reduces(side Side, qty int64) bool {
	if side == SideSell {
		pending, ok := addChecked(p.openSell, qty)
		return p.qty > 0 && ok && pending <= p.qty
	}
	pending, ok := addChecked(p.openBuy, qty)
	return p.qty < 0 && ok && pending <= -p.qty
}

// exposureAfter is the position's size on side if every open order on that side and this one fill.
func (p *position) exposureAfter(side Side, qty int64) int64 {
	if side == SideSell {
		return satSub(satAdd(p.openSell, qty), p.qty)
	}
	return satAdd(satAdd(p.qty, p.openBuy), qty)
}

// applyFill books one fill of qty lots at price with the given notional and fee. It changes p only
// when it succeeds; every overflow is an error.
func (p *position) applyFill(s *symbol, side Side, price, qty, notional, fee, day int64) error {
	next := *p
	signed := qty
	if side == SideSell {
		signed = -qty
	}
	var realised int64
	switch {
	case next.qty == 0 || (next.qty > 0) == (signed > 0):
		// Opening or adding: the cost basis grows by what was paid or received.
		cost, ok := addChecked(next.cost, notional)
		if !ok {
			return errOverflow("position cost")
		}
		next.cost = cost
		if next.qty, ok = addChecked(next.qty, signed); !ok {
			return errOverflow("position")
		}
	default:
		// Reducing, and possibly flipping: close up to the open size against its share of the cost.
		open := next.qty
		if open < 0 {
			open = -open
		}
		closing := min(qty, open)
		share := next.cost
		if closing < open {
			var ok bool
			if share, ok = mulDivFloor(next.cost, closing, open); !ok {
				return errOverflow("position cost")
			}
		}
		closed, _ := s.notional(price, closing) // closing <= qty, whose notional fits
		if next.qty > 0 {
			realised = closed - share
			next.qty -= closing
		} else {
			realised = share - closed
			next.qty += closing
		}
		next.cost -= share
		if rest := qty - closing; rest > 0 {
			opened, _ := s.notional(price, rest)
			next.qty, next.cost = signed/qty*rest, opened
		}
	}
	var ok bool
	if next.realised, ok = addChecked(next.realised, realised); !ok {
		return errOverflow("realised PnL")
	}
	if next.fees, ok = addChecked(next.fees, fee); !ok {
		return errOverflow("fees")
	}
	if day > next.day {
		next.day, next.dayPnL = day, 0
	}
	dayDelta, ok := subChecked(realised, fee)
	if ok {
		next.dayPnL, ok = addChecked(next.dayPnL, dayDelta)
	}
	if !ok {
		return errOverflow("daily PnL")
	}
	next.hwm = max(next.hwm, next.equity(s, price))
	*p = next
	return nil
}

func errOverflow(what string) error {
	return errs.Invalid("executions", "%s would overflow", what)
}
