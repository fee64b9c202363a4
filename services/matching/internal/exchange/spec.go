package exchange

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/shopspring/decimal"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/pkg/money"
	"github.com/bourse-dev/bourse/services/matching/internal/book"
)

// Spec is a symbol's trading rules. Decimal strings are parsed here, at the edge; the book sees
// integer ticks (multiples of TickUnits at PriceScale) and lots (multiples of LotUnits at QtyScale).
// The scales and the fee come from the risk service's definition of the symbol, so that every price
// matching sends to risk is exact there too.
type Spec struct {
	Symbol     string `json:"symbol"`
	PriceScale uint8  `json:"price_scale"`
	QtyScale   uint8  `json:"qty_scale"`
	QuoteScale uint8  `json:"quote_scale"`
	TickUnits  int64  `json:"tick_units"`
	LotUnits   int64  `json:"lot_units"`
	MinLots    int64  `json:"min_lots"`
	MaxLots    int64  `json:"max_lots"`
	MaxTicks   int64  `json:"max_ticks"`
	// MarketProtection bounds how far a market order without a price may trade from the best
	// opposite price, as a fraction ("0.05").
	MarketProtection string `json:"market_protection"`
	// TakerFeeRate is the risk service's fee rate, charged to the taker of every trade.
	TakerFeeRate string `json:"taker_fee_rate"`
}

// SpecInput is what an operator gives AddSymbol, in decimals.
type SpecInput struct {
	Symbol, TickSize, LotSize, MinQty, MaxQty, MaxPrice, MarketProtection string
}

// RiskSymbol is the risk service's view of a symbol.
type RiskSymbol struct {
	PriceScale, QtyScale, QuoteScale uint8
	TakerFeeRate                     string
}

// NewSpec validates an AddSymbol request against the risk service's symbol.
func NewSpec(in SpecInput, rs RiskSymbol) (Spec, error) {
	s := Spec{Symbol: in.Symbol, PriceScale: rs.PriceScale, QtyScale: rs.QtyScale, QuoteScale: rs.QuoteScale, TakerFeeRate: rs.TakerFeeRate}
	if err := validSymbolName(in.Symbol); err != nil {
		return Spec{}, err
	}
	var err error
	if s.TickUnits, err = money.Positive("symbol.tick_size", in.TickSize, s.PriceScale); err != nil {
		return Spec{}, err
	}
	if s.LotUnits, err = money.Positive("symbol.lot_size", in.LotSize, s.QtyScale); err != nil {
		return Spec{}, err
	}
	s.MinLots, s.MaxLots, s.MaxTicks = 1, book.DefaultMaxQty, book.DefaultMaxPrice
	if in.MinQty != "" {
		if s.MinLots, err = s.Lots("symbol.min_quantity", in.MinQty); err != nil {
			return Spec{}, err
		}
	}
	if in.MaxQty != "" {
		if s.MaxLots, err = s.Lots("symbol.max_quantity", in.MaxQty); err != nil {
			return Spec{}, err
		}
	}
	if s.MaxLots < s.MinLots {
		return Spec{}, errs.Invalid("symbol.max_quantity", "is below min_quantity")
	}
	if in.MaxPrice != "" {
		if s.MaxTicks, err = s.Ticks("symbol.max_price", in.MaxPrice); err != nil {
			return Spec{}, err
		}
	}
	// Level totals are sums of quantities; keep every product far from int64 overflow.
	if s.MaxLots > book.DefaultMaxQty || s.MaxTicks > book.DefaultMaxPrice {
		return Spec{}, errs.Invalid("symbol.max_quantity", "too large")
	}
	if math.MaxInt64/s.TickUnits < s.MaxTicks {
		return Spec{}, errs.Invalid("symbol.max_price", "overflows at price scale %d", s.PriceScale)
	}
	if math.MaxInt64/s.LotUnits < s.MaxLots {
		return Spec{}, errs.Invalid("symbol.max_quantity", "overflows at quantity scale %d", s.QtyScale)
	}
	s.MarketProtection = "0.05"
	if in.MarketProtection != "" {
		p, err := money.Parse("symbol.market_protection", in.MarketProtection)
		if err != nil {
			return Spec{}, err
		}
		if !p.IsPositive() || p.GreaterThanOrEqual(decimal.NewFromInt(1)) {
			return Spec{}, errs.Invalid("symbol.market_protection", "must be above 0 and below 1")
		}
		s.MarketProtection = p.String()
	}
	return s, nil
}

func validSymbolName(name string) error {
	if name == "" || len(name) > 32 {
		return errs.Invalid("symbol.symbol", "must be 1 to 32 characters")
	}
	for _, r := range name {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return errs.Invalid("symbol.symbol", "may hold only A-Z, 0-9, '-', '_' and '.'")
		}
	}
	return nil
}

// Instrument is the book's view of the spec.
func (s *Spec) Instrument() book.Instrument {
	return book.Instrument{TickSize: s.TickUnits, LotSize: s.LotUnits, MinQty: s.MinLots, MaxQty: s.MaxLots, MaxPrice: s.MaxTicks}
}

// Ticks parses a positive price that must be a multiple of the tick size.
func (s *Spec) Ticks(field, v string) (int64, error) {
	units, err := money.Positive(field, v, s.PriceScale)
	if err != nil {
		return 0, err
	}
	if units%s.TickUnits != 0 {
		return 0, errs.Invalid(field, "%s is not a multiple of the tick size %s", v, money.Format(s.TickUnits, s.PriceScale))
	}
	ticks := units / s.TickUnits
	if ticks > s.MaxTicks {
		return 0, errs.Invalid(field, "above the maximum price %s", s.FormatPrice(s.MaxTicks))
	}
	return ticks, nil
}

// Lots parses a positive quantity that must be a multiple of the lot size.
func (s *Spec) Lots(field, v string) (int64, error) {
	units, err := money.Positive(field, v, s.QtyScale)
	if err != nil {
		return 0, err
	}
	if units%s.LotUnits != 0 {
		return 0, errs.Invalid(field, "%s is not a multiple of the lot size %s", v, money.Format(s.LotUnits, s.QtyScale))
	}
	return units / s.LotUnits, nil
}

// FormatPrice renders ticks as a decimal string at the price scale.
func (s *Spec) FormatPrice(ticks int64) string { return money.Format(ticks*s.TickUnits, s.PriceScale) }

// FormatQty renders lots as a decimal string at the quantity scale.
func (s *Spec) FormatQty(lots int64) string { return money.Format(lots*s.LotUnits, s.QtyScale) }

// TakerFee is the fee, in quote units at QuoteScale, for a taker trade of lots at ticks: the
// notional times the fee rate, rounded down, so it never exceeds what the risk service reserved
// (which rounds up at the order's own, never better, price).
func (s *Spec) TakerFee(ticks, lots int64) string {
	rate, err := decimal.NewFromString(s.TakerFeeRate)
	if err != nil {
		return "0" // no fee configured in risk
	}
	price := decimal.New(ticks*s.TickUnits, -int32(s.PriceScale))
	qty := decimal.New(lots*s.LotUnits, -int32(s.QtyScale))
	return price.Mul(qty).Mul(rate).Truncate(int32(s.QuoteScale)).String()
}

// protection returns the worst price a market order may trade at, from the best opposite price.
func (s *Spec) protection(side book.Side, best int64) int64 {
	p, err := decimal.NewFromString(s.MarketProtection)
	if err != nil {
		p = decimal.New(5, -2)
	}
	b := decimal.NewFromInt(best)
	if side == book.Buy {
		v := b.Mul(decimal.NewFromInt(1).Add(p)).Floor().IntPart()
		return min(max(v, best), s.MaxTicks)
	}
	v := b.Mul(decimal.NewFromInt(1).Sub(p)).Ceil().IntPart()
	return max(min(v, best), 1)
}

func (s *Spec) encode() string {
	b, _ := json.Marshal(s) // plain fields: cannot fail
	return string(b)
}

func decodeSpec(raw string) (Spec, error) {
	var s Spec
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return Spec{}, fmt.Errorf("symbol spec: %w", err)
	}
	if s.TickUnits <= 0 || s.LotUnits <= 0 {
		return Spec{}, fmt.Errorf("symbol spec of %q: tick and lot must be positive", s.Symbol)
	}
	return s, nil
}
