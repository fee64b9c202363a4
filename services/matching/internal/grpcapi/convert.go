package grpcapi

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bourse-dev/bourse/pkg/errs"
	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
	"github.com/bourse-dev/bourse/services/matching/internal/book"
	"github.com/bourse-dev/bourse/services/matching/internal/exchange"
)

func sideFromProto(field string, s matchingv1.Side) (book.Side, error) {
	switch s {
	case matchingv1.Side_SIDE_BUY:
		return book.Buy, nil
	case matchingv1.Side_SIDE_SELL:
		return book.Sell, nil
	}
	return 0, errs.Invalid(field, "must be SIDE_BUY or SIDE_SELL")
}

func sideToProto(s book.Side) matchingv1.Side {
	switch s {
	case book.Buy:
		return matchingv1.Side_SIDE_BUY
	case book.Sell:
		return matchingv1.Side_SIDE_SELL
	}
	return matchingv1.Side_SIDE_UNSPECIFIED
}

var orderTypes = map[matchingv1.OrderType]exchange.OrderType{
	matchingv1.OrderType_ORDER_TYPE_LIMIT:      exchange.TypeLimit,
	matchingv1.OrderType_ORDER_TYPE_MARKET:     exchange.TypeMarket,
	matchingv1.OrderType_ORDER_TYPE_STOP:       exchange.TypeStop,
	matchingv1.OrderType_ORDER_TYPE_STOP_LIMIT: exchange.TypeStopLimit,
}

var tifs = map[matchingv1.TimeInForce]book.TimeInForce{
	matchingv1.TimeInForce_TIME_IN_FORCE_UNSPECIFIED: book.GTC,
	matchingv1.TimeInForce_TIME_IN_FORCE_GTC:         book.GTC,
	matchingv1.TimeInForce_TIME_IN_FORCE_IOC:         book.IOC,
	matchingv1.TimeInForce_TIME_IN_FORCE_FOK:         book.FOK,
	matchingv1.TimeInForce_TIME_IN_FORCE_GTD:         book.GTD,
	matchingv1.TimeInForce_TIME_IN_FORCE_DAY:         book.DAY,
}

var stps = map[matchingv1.SelfTradePrevention]book.STPMode{
	matchingv1.SelfTradePrevention_SELF_TRADE_PREVENTION_UNSPECIFIED:   book.STPCancelNewest,
	matchingv1.SelfTradePrevention_SELF_TRADE_PREVENTION_CANCEL_NEWEST: book.STPCancelNewest,
	matchingv1.SelfTradePrevention_SELF_TRADE_PREVENTION_CANCEL_OLDEST: book.STPCancelOldest,
	matchingv1.SelfTradePrevention_SELF_TRADE_PREVENTION_CANCEL_BOTH:   book.STPCancelBoth,
	matchingv1.SelfTradePrevention_SELF_TRADE_PREVENTION_DECREMENT:     book.STPDecrement,
}

// inverse builds the reverse of a one-to-one enum map; the UNSPECIFIED aliases lose to the explicit
// values because those are written last.
func inverse[K, V comparable](m map[K]V, prefer ...K) map[V]K {
	out := make(map[V]K, len(m))
	for k, v := range m {
		out[v] = k
	}
	for _, k := range prefer {
		out[m[k]] = k
	}
	return out
}

var (
	orderTypesOut = inverse(orderTypes)
	tifsOut       = inverse(tifs, matchingv1.TimeInForce_TIME_IN_FORCE_GTC)
	stpsOut       = inverse(stps, matchingv1.SelfTradePrevention_SELF_TRADE_PREVENTION_CANCEL_NEWEST)
)

var statuses = map[exchange.Status]matchingv1.OrderStatus{
	exchange.StatusNew:             matchingv1.OrderStatus_ORDER_STATUS_NEW,
	exchange.StatusPartiallyFilled: matchingv1.OrderStatus_ORDER_STATUS_PARTIALLY_FILLED,
	exchange.StatusFilled:          matchingv1.OrderStatus_ORDER_STATUS_FILLED,
	exchange.StatusCancelled:       matchingv1.OrderStatus_ORDER_STATUS_CANCELLED,
	exchange.StatusRejected:        matchingv1.OrderStatus_ORDER_STATUS_REJECTED,
	exchange.StatusPendingTrigger:  matchingv1.OrderStatus_ORDER_STATUS_PENDING_TRIGGER,
}

var rejects = map[exchange.RejectReason]matchingv1.RejectReason{
	exchange.RejectRisk:               matchingv1.RejectReason_REJECT_REASON_RISK,
	exchange.RejectPostOnlyWouldCross: matchingv1.RejectReason_REJECT_REASON_POST_ONLY_WOULD_CROSS,
	exchange.RejectFOKCannotFill:      matchingv1.RejectReason_REJECT_REASON_FOK_CANNOT_FILL,
	exchange.RejectNoLiquidity:        matchingv1.RejectReason_REJECT_REASON_NO_LIQUIDITY,
	exchange.RejectUnknownOrder:       matchingv1.RejectReason_REJECT_REASON_UNKNOWN_ORDER,
	exchange.RejectAmendQtyTooLow:     matchingv1.RejectReason_REJECT_REASON_AMEND_QTY_TOO_LOW,
	exchange.RejectInvalidOrder:       matchingv1.RejectReason_REJECT_REASON_INVALID_ORDER,
	exchange.RejectOrderClosed:        matchingv1.RejectReason_REJECT_REASON_ORDER_CLOSED,
}

var cancels = map[book.Reason]matchingv1.CancelReason{
	book.CancelUser:            matchingv1.CancelReason_CANCEL_REASON_USER,
	book.CancelIOCRemainder:    matchingv1.CancelReason_CANCEL_REASON_IOC_REMAINDER,
	book.CancelMarketRemainder: matchingv1.CancelReason_CANCEL_REASON_MARKET_REMAINDER,
	book.CancelFOK:             matchingv1.CancelReason_CANCEL_REASON_FOK,
	book.CancelSTP:             matchingv1.CancelReason_CANCEL_REASON_SELF_TRADE,
	book.CancelExpired:         matchingv1.CancelReason_CANCEL_REASON_EXPIRED,
	book.CancelPostOnly:        matchingv1.CancelReason_CANCEL_REASON_POST_ONLY,
	book.CancelNoLiquidity:     matchingv1.CancelReason_CANCEL_REASON_NO_LIQUIDITY,
}

func ts(unixNano int64) *timestamppb.Timestamp {
	if unixNano == 0 {
		return nil
	}
	return timestamppb.New(time.Unix(0, unixNano).UTC())
}

// optional formats a tick or lot count that may be absent.
func optional(v int64, format func(int64) string) string {
	if v == 0 {
		return ""
	}
	return format(v)
}

func orderToProto(spec *exchange.Spec, o *exchange.Order) *matchingv1.Order {
	p := &matchingv1.Order{
		OrderId: o.ID, ClientOrderId: o.ClientOrderID, AccountId: o.Account, Symbol: o.Symbol,
		Side: sideToProto(o.Side), Type: orderTypesOut[o.Type], TimeInForce: tifsOut[o.TIF],
		Price: optional(o.Price, spec.FormatPrice), TriggerPrice: optional(o.TriggerPrice, spec.FormatPrice),
		Quantity: spec.FormatQty(o.Qty), FilledQuantity: spec.FormatQty(o.Filled), RemainingQuantity: spec.FormatQty(o.Remaining),
		DisplayQuantity: optional(o.DisplayQty, spec.FormatQty), PostOnly: o.PostOnly, SelfTradePrevention: stpsOut[o.STP],
		Status: statuses[o.Status], RejectReason: rejects[o.Reject], RiskRejectReason: o.RiskReject,
		CancelReason: cancels[o.Cancel], ExpireTime: ts(o.ExpireAt), CreatedTime: ts(o.Created), UpdatedTime: ts(o.Updated),
		FilledNotional: spec.FormatNotional(o.FilledNotional),
	}
	if o.Status == exchange.StatusRejected {
		p.RemainingQuantity = spec.FormatQty(0)
	}
	return p
}

func fillsToProto(spec *exchange.Spec, fills []exchange.Fill) []*matchingv1.Fill {
	if len(fills) == 0 {
		return nil
	}
	out := make([]*matchingv1.Fill, len(fills))
	for i := range fills {
		out[i] = fillToProto(spec, &fills[i])
	}
	return out
}

func fillToProto(spec *exchange.Spec, f *exchange.Fill) *matchingv1.Fill {
	return &matchingv1.Fill{OrderId: f.OrderID, ClientOrderId: f.ClientOrderID, Symbol: f.Symbol, Side: sideToProto(f.Side),
		Price: spec.FormatPrice(f.Price), Quantity: spec.FormatQty(f.Qty), Maker: f.Maker, Sequence: f.Seq, Time: ts(f.Time)}
}

func specToProto(s *exchange.Spec) *matchingv1.Symbol {
	return &matchingv1.Symbol{
		Symbol: s.Symbol, TickSize: s.FormatPrice(1), LotSize: s.FormatQty(1),
		MinQuantity: s.FormatQty(s.MinLots), MaxQuantity: s.FormatQty(s.MaxLots), MaxPrice: s.FormatPrice(s.MaxTicks),
		MarketProtection: s.MarketProtection,
	}
}

func levelsToProto(spec *exchange.Spec, levels []book.DepthLevel) []*matchingv1.PriceLevel {
	out := make([]*matchingv1.PriceLevel, len(levels))
	for i, l := range levels {
		out[i] = &matchingv1.PriceLevel{Price: spec.FormatPrice(l.Price), Quantity: spec.FormatQty(l.Qty), Orders: uint32(l.Orders)}
	}
	return out
}

func bookOrdersToProto(spec *exchange.Spec, orders []exchange.BookOrder) []*matchingv1.BookOrder {
	out := make([]*matchingv1.BookOrder, len(orders))
	for i, o := range orders {
		out[i] = &matchingv1.BookOrder{OrderId: o.ID, AccountId: o.Account, Price: spec.FormatPrice(o.Price),
			VisibleQuantity: spec.FormatQty(o.Visible), RemainingQuantity: spec.FormatQty(o.Remaining)}
	}
	return out
}

func viewToProto(v *exchange.BookView) *matchingv1.GetBookResponse {
	spec := v.Spec
	resp := &matchingv1.GetBookResponse{Symbol: spec.Symbol, Bids: levelsToProto(spec, v.Bids), Asks: levelsToProto(spec, v.Asks), Sequence: v.Seq}
	if v.HasLast {
		resp.LastPrice = spec.FormatPrice(v.Last)
	}
	if v.BidOrders != nil || v.AskOrders != nil {
		resp.BidOrders, resp.AskOrders = bookOrdersToProto(spec, v.BidOrders), bookOrdersToProto(spec, v.AskOrders)
	}
	return resp
}

func marketDataToProto(md *exchange.MarketData) *matchingv1.StreamMarketDataResponse {
	spec := md.Spec
	resp := &matchingv1.StreamMarketDataResponse{Symbol: spec.Symbol, Sequence: md.Seq}
	if md.Snapshot != nil {
		resp.Update = &matchingv1.StreamMarketDataResponse_Snapshot{Snapshot: viewToProto(md.Snapshot)}
		return resp
	}
	delta := &matchingv1.BookDelta{}
	for _, l := range md.Levels {
		delta.Levels = append(delta.Levels, &matchingv1.LevelChange{Side: sideToProto(l.Side), Price: spec.FormatPrice(l.Price), Quantity: spec.FormatQty(l.Qty), Sequence: l.Seq})
	}
	for _, t := range md.Trades {
		delta.Trades = append(delta.Trades, &matchingv1.Trade{Sequence: t.Seq, Price: spec.FormatPrice(t.Price), Quantity: spec.FormatQty(t.Qty), AggressorSide: sideToProto(t.Aggressor), Time: ts(t.Time)})
	}
	resp.Update = &matchingv1.StreamMarketDataResponse_Delta{Delta: delta}
	return resp
}
