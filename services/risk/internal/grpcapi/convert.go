package grpcapi

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bourse-dev/bourse/pkg/errs"
	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
	"github.com/bourse-dev/bourse/pkg/money"
	"github.com/bourse-dev/bourse/services/risk/internal/engine"
)

// ppmScale: fractions ("0.001") travel as decimals and live inside as parts per million.
const ppmScale = 6

func format(units int64, scale uint8) string { return money.Format(units, scale) }

func (s *Server) assetScale(field, id string) (uint8, error) {
	for _, a := range s.eng.Assets() {
		if a.ID == id {
			return a.Scale, nil
		}
	}
	if id == "" {
		return 0, errs.Invalid(field, "is required")
	}
	return 0, errs.New(errs.KindNotFound, "%s: unknown asset %q", field, id)
}

// symbolScales returns the symbol's price, quantity and quote-amount scales.
func (s *Server) symbolScales(field, id string) (price, qty, quote uint8, err error) {
	if id == "" {
		return 0, 0, 0, errs.Invalid(field, "is required")
	}
	sym, err := s.eng.Symbol(id)
	if err != nil {
		return 0, 0, 0, errs.New(errs.KindNotFound, "%s: unknown symbol %q", field, id)
	}
	quote, err = s.assetScale(field, sym.Quote)
	return sym.PriceScale, sym.QtyScale, quote, err
}

func (s *Server) symbolSpec(sym *riskv1.Symbol) (engine.SymbolSpec, error) {
	if sym == nil {
		return engine.SymbolSpec{}, errs.Invalid("symbol", "is required")
	}
	if sym.GetPriceScale() > money.MaxScale || sym.GetQtyScale() > money.MaxScale {
		return engine.SymbolSpec{}, errs.Invalid("symbol.price_scale", "scales must be at most %d", money.MaxScale)
	}
	spec := engine.SymbolSpec{ID: sym.GetSymbol(), Base: sym.GetBaseAsset(), Quote: sym.GetQuoteAsset(),
		PriceScale: uint8(sym.GetPriceScale()), QtyScale: uint8(sym.GetQtyScale())}
	var err error
	if spec.TakerFeePPM, err = money.NonNegative("symbol.taker_fee_rate", sym.GetTakerFeeRate(), ppmScale); err != nil {
		return spec, err
	}
	if spec.ReferencePrice, err = money.NonNegative("symbol.reference_price", sym.GetReferencePrice(), spec.PriceScale); err != nil {
		return spec, err
	}
	return spec, nil
}

func (s *Server) symbolToProto(sym engine.SymbolView) *riskv1.Symbol {
	out := &riskv1.Symbol{Symbol: sym.ID, BaseAsset: sym.Base, QuoteAsset: sym.Quote,
		PriceScale: uint32(sym.PriceScale), QtyScale: uint32(sym.QtyScale),
		TakerFeeRate: format(sym.TakerFeePPM, ppmScale)}
	if sym.ReferencePrice > 0 {
		out.ReferencePrice = format(sym.ReferencePrice, sym.PriceScale)
	}
	if sym.MarkPrice > 0 {
		out.MarkPrice = format(sym.MarkPrice, sym.PriceScale)
	}
	return out
}

func (s *Server) transferFromRequest(account, asset, amount, ref string) (engine.Transfer, uint8, error) {
	if account == "" {
		return engine.Transfer{}, 0, errs.Invalid("account_id", "is required")
	}
	if ref == "" {
		return engine.Transfer{}, 0, errs.Invalid("ref", "is required (the idempotency key)")
	}
	scale, err := s.assetScale("asset_id", asset)
	if err != nil {
		return engine.Transfer{}, 0, err
	}
	units, err := money.Positive("amount", amount, scale)
	if err != nil {
		return engine.Transfer{}, 0, err
	}
	return engine.Transfer{Account: account, Asset: asset, Amount: units, Ref: ref}, scale, nil
}

func (s *Server) orderCheck(req *riskv1.CheckOrderRequest) (engine.OrderCheck, error) {
	if req.GetAccountId() == "" {
		return engine.OrderCheck{}, errs.Invalid("account_id", "is required")
	}
	side, err := sideFromProto("side", req.GetSide())
	if err != nil {
		return engine.OrderCheck{}, err
	}
	var typ engine.OrderType
	switch req.GetType() {
	case riskv1.OrderType_ORDER_TYPE_LIMIT:
		typ = engine.OrderLimit
	case riskv1.OrderType_ORDER_TYPE_MARKET:
		typ = engine.OrderMarket
	default:
		return engine.OrderCheck{}, errs.Invalid("type", "must be ORDER_TYPE_LIMIT or ORDER_TYPE_MARKET")
	}
	priceScale, qtyScale, _, err := s.symbolScales("symbol", req.GetSymbol())
	if err != nil {
		return engine.OrderCheck{}, err
	}
	price, err := money.Positive("price", req.GetPrice(), priceScale)
	if err != nil {
		return engine.OrderCheck{}, err
	}
	qty, err := money.Positive("quantity", req.GetQuantity(), qtyScale)
	if err != nil {
		return engine.OrderCheck{}, err
	}
	return engine.OrderCheck{Account: req.GetAccountId(), Symbol: req.GetSymbol(), Side: side, Type: typ,
		Price: price, Qty: qty, ReduceOnly: req.GetReduceOnly(), Now: s.now(), Replaces: req.GetReplacesReservationId()}, nil
}

func (s *Server) executions(in []*riskv1.Execution) ([]engine.Execution, error) {
	if len(in) == 0 {
		return nil, errs.Invalid("executions", "is empty")
	}
	out := make([]engine.Execution, len(in))
	for i, x := range in {
		field := func(name string) string { return fmt.Sprintf("executions[%d].%s", i, name) }
		if x.GetExecId() == "" {
			return nil, errs.Invalid(field("exec_id"), "is required")
		}
		side, err := sideFromProto(field("side"), x.GetSide())
		if err != nil {
			return nil, err
		}
		priceScale, qtyScale, quoteScale, err := s.symbolScales(field("symbol"), x.GetSymbol())
		if err != nil {
			return nil, err
		}
		e := engine.Execution{ExecID: x.GetExecId(), ReservationID: x.GetReservationId(), Account: x.GetAccountId(),
			Symbol: x.GetSymbol(), Side: side}
		if e.Price, err = money.Positive(field("price"), x.GetPrice(), priceScale); err != nil {
			return nil, err
		}
		if e.Qty, err = money.Positive(field("quantity"), x.GetQuantity(), qtyScale); err != nil {
			return nil, err
		}
		if e.Fee, err = money.NonNegative(field("fee"), x.GetFee(), quoteScale); err != nil {
			return nil, err
		}
		if x.GetTime() == nil {
			return nil, errs.Invalid(field("time"), "is required")
		}
		if err := x.GetTime().CheckValid(); err != nil {
			return nil, errs.Invalid(field("time"), "%v", err)
		}
		e.Time = x.GetTime().AsTime().UnixNano()
		out[i] = e
	}
	return out, nil
}

// limitsFromProto converts limits for symbol, or for the account defaults when symbol is empty: then
// quantities and money must convert the same way for every symbol, or be set per symbol.
func (s *Server) limitsFromProto(field, symbol string, l *riskv1.Limits) (engine.Limits, error) {
	if l == nil {
		return engine.Limits{}, nil
	}
	var qtyScale, quoteScale uint8
	if symbol != "" {
		_, q, m, err := s.symbolScales("symbol", symbol)
		if err != nil {
			return engine.Limits{}, err
		}
		qtyScale, quoteScale = q, m
	} else if l.GetMaxPosition() != "" || l.GetMaxDailyLoss() != "" || l.GetMaxDrawdown() != "" || l.GetMaxOrderNotional() != "" {
		var err error
		if qtyScale, quoteScale, err = s.commonScales(field); err != nil {
			return engine.Limits{}, err
		}
	}
	var out engine.Limits
	var err error
	for _, f := range []struct {
		name  string
		in    string
		scale uint8
		dst   *int64
	}{
		{"max_position", l.GetMaxPosition(), qtyScale, &out.MaxPosition},
		{"max_daily_loss", l.GetMaxDailyLoss(), quoteScale, &out.MaxDailyLoss},
		{"max_drawdown", l.GetMaxDrawdown(), quoteScale, &out.MaxDrawdown},
		{"max_order_notional", l.GetMaxOrderNotional(), quoteScale, &out.MaxOrderNotional},
		{"price_band", l.GetPriceBand(), ppmScale, &out.PriceBandPPM},
	} {
		if *f.dst, err = money.NonNegative(field+"."+f.name, f.in, f.scale); err != nil {
			return out, err
		}
	}
	out.OrderRate = engine.Rate{PerSecond: l.GetOrderRatePerSecond(), Burst: l.GetOrderRateBurst()}
	return out, nil
}

// commonScales is the quantity and quote scale shared by every symbol, for account-wide limits.
func (s *Server) commonScales(field string) (qty, quote uint8, err error) {
	syms := s.eng.Symbols()
	if len(syms) == 0 {
		return 0, 0, errs.Invalid(field, "define a symbol before setting quantity or money limits")
	}
	for i, sym := range syms {
		q, err := s.assetScale(field, sym.Quote)
		if err != nil {
			return 0, 0, err
		}
		if i > 0 && (sym.QtyScale != qty || q != quote) {
			return 0, 0, errs.Invalid(field, "symbols differ in quantity or quote scale: set these limits per symbol")
		}
		qty, quote = sym.QtyScale, q
	}
	return qty, quote, nil
}

func (s *Server) limitsToProto(l engine.Limits, qtyScale, quoteScale uint8) *riskv1.Limits {
	opt := func(v int64, scale uint8) string {
		if v == 0 {
			return ""
		}
		return format(v, scale)
	}
	return &riskv1.Limits{
		MaxPosition: opt(l.MaxPosition, qtyScale), MaxDailyLoss: opt(l.MaxDailyLoss, quoteScale),
		MaxDrawdown: opt(l.MaxDrawdown, quoteScale), MaxOrderNotional: opt(l.MaxOrderNotional, quoteScale),
		PriceBand: opt(l.PriceBandPPM, ppmScale), OrderRatePerSecond: l.OrderRate.PerSecond, OrderRateBurst: l.OrderRate.Burst,
	}
}

func (s *Server) accountToProto(v engine.AccountView) *riskv1.Account {
	out := &riskv1.Account{AccountId: v.ID, TradingState: tradingStateToProto(v.State),
		GlobalTradingState: tradingStateToProto(s.eng.GlobalTradingState())}
	if qty, quote, err := s.commonScales("limits"); err == nil {
		out.Limits = s.limitsToProto(v.Limits, qty, quote)
	} else {
		out.Limits = s.limitsToProto(engine.Limits{OrderRate: v.Limits.OrderRate, PriceBandPPM: v.Limits.PriceBandPPM}, 0, 0)
	}
	for _, b := range v.Balances {
		scale, _ := s.assetScale("asset", b.Asset)
		out.Balances = append(out.Balances, &riskv1.Balance{AssetId: b.Asset, Total: format(b.Total, scale),
			Reserved: format(b.Reserved, scale), Available: format(b.Available, scale)})
	}
	for _, p := range v.Positions {
		ps, qs, ms, _ := s.symbolScales("symbol", p.Symbol)
		out.Positions = append(out.Positions, &riskv1.Position{
			Symbol: p.Symbol, Quantity: format(p.Qty, qs), AveragePrice: format(p.AvgPrice, ps),
			RealisedPnl: format(p.RealisedPnL, ms), FeesPaid: format(p.FeesPaid, ms), MarkPrice: format(p.MarkPrice, ps),
			UnrealisedPnl: format(p.UnrealisedPnL, ms), Equity: format(p.Equity, ms), HighWaterMark: format(p.HighWaterMark, ms),
			Drawdown: format(p.Drawdown, ms), DailyPnl: format(p.DailyPnL, ms),
			TradingDayStart: timestamppb.New(time.Unix(0, p.TradingDayStart)),
			OpenBuyQuantity: format(p.OpenBuyQty, qs), OpenSellQuantity: format(p.OpenSellQty, qs),
			Limits: s.limitsToProto(p.Limits, qs, ms), LimitsOverride: p.LimitsOverride,
		})
	}
	for _, r := range v.Reservations {
		ps, qs, _, _ := s.symbolScales("symbol", r.Symbol)
		as, _ := s.assetScale("asset", r.Asset)
		out.Reservations = append(out.Reservations, &riskv1.Reservation{ReservationId: r.ID, Symbol: r.Symbol,
			Side: sideToProto(r.Side), Price: format(r.Price, ps), Quantity: format(r.Qty, qs), AssetId: r.Asset, Amount: format(r.Amount, as)})
	}
	return out
}

func sideFromProto(field string, s riskv1.Side) (engine.Side, error) {
	switch s {
	case riskv1.Side_SIDE_BUY:
		return engine.SideBuy, nil
	case riskv1.Side_SIDE_SELL:
		return engine.SideSell, nil
	}
	return 0, errs.Invalid(field, "must be SIDE_BUY or SIDE_SELL")
}

func sideToProto(s engine.Side) riskv1.Side {
	if s == engine.SideSell {
		return riskv1.Side_SIDE_SELL
	}
	return riskv1.Side_SIDE_BUY
}

func tradingStateFromProto(s riskv1.TradingState) (engine.TradingState, error) {
	switch s {
	case riskv1.TradingState_TRADING_STATE_ACTIVE:
		return engine.TradingActive, nil
	case riskv1.TradingState_TRADING_STATE_REDUCE_ONLY:
		return engine.TradingReduceOnly, nil
	case riskv1.TradingState_TRADING_STATE_HALTED:
		return engine.TradingHalted, nil
	}
	return 0, errs.Invalid("state", "must be ACTIVE, REDUCE_ONLY or HALTED")
}

func tradingStateToProto(s engine.TradingState) riskv1.TradingState {
	switch s {
	case engine.TradingReduceOnly:
		return riskv1.TradingState_TRADING_STATE_REDUCE_ONLY
	case engine.TradingHalted:
		return riskv1.TradingState_TRADING_STATE_HALTED
	}
	return riskv1.TradingState_TRADING_STATE_ACTIVE
}

var rejectReasons = map[engine.Reject]riskv1.RejectReason{
	engine.Accepted:                riskv1.RejectReason_REJECT_REASON_UNSPECIFIED,
	engine.RejectInsufficientFunds: riskv1.RejectReason_REJECT_REASON_INSUFFICIENT_FUNDS,
	engine.RejectMaxPosition:       riskv1.RejectReason_REJECT_REASON_MAX_POSITION_EXCEEDED,
	engine.RejectMaxDailyLoss:      riskv1.RejectReason_REJECT_REASON_MAX_DAILY_LOSS_REACHED,
	engine.RejectMaxDrawdown:       riskv1.RejectReason_REJECT_REASON_MAX_DRAWDOWN_REACHED,
	engine.RejectPriceBand:         riskv1.RejectReason_REJECT_REASON_PRICE_OUTSIDE_BAND,
	engine.RejectNotionalTooLarge:  riskv1.RejectReason_REJECT_REASON_ORDER_NOTIONAL_TOO_LARGE,
	engine.RejectOrderRate:         riskv1.RejectReason_REJECT_REASON_ORDER_RATE_EXCEEDED,
	engine.RejectHalted:            riskv1.RejectReason_REJECT_REASON_ACCOUNT_HALTED,
	engine.RejectReduceOnly:        riskv1.RejectReason_REJECT_REASON_REDUCE_ONLY_VIOLATED,
	engine.RejectUnknownAccount:    riskv1.RejectReason_REJECT_REASON_UNKNOWN_ACCOUNT,
	engine.RejectUnknownSymbol:     riskv1.RejectReason_REJECT_REASON_UNKNOWN_SYMBOL,
	engine.RejectInvalidQuantity:   riskv1.RejectReason_REJECT_REASON_INVALID_QUANTITY,
	engine.RejectInvalidPrice:      riskv1.RejectReason_REJECT_REASON_INVALID_PRICE,
	engine.RejectInvalidOrder:      riskv1.RejectReason_REJECT_REASON_INVALID_ORDER,
}

func rejectToProto(r engine.Reject) riskv1.RejectReason { return rejectReasons[r] }
