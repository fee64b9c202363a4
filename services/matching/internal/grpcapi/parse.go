package grpcapi

import (
	"github.com/bourse-dev/bourse/pkg/errs"
	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
	"github.com/bourse-dev/bourse/services/matching/internal/exchange"
)

// orderRequest parses a SubmitOrderRequest with its symbol's tick and lot.
func (s *Server) orderRequest(req *matchingv1.SubmitOrderRequest) (*exchange.Spec, exchange.OrderRequest, error) {
	var or exchange.OrderRequest
	spec, err := s.x.Spec(req.GetSymbol())
	if err != nil {
		return nil, or, err
	}
	or = exchange.OrderRequest{Account: req.GetAccountId(), Symbol: req.GetSymbol(), ClientOrderID: req.GetClientOrderId(),
		PostOnly: req.GetPostOnly(), ReduceOnly: req.GetReduceOnly()}
	if or.Side, err = sideFromProto("side", req.GetSide()); err != nil {
		return nil, or, err
	}
	var ok bool
	if or.Type, ok = orderTypes[req.GetType()]; !ok {
		return nil, or, errs.Invalid("type", "must be ORDER_TYPE_LIMIT, _MARKET, _STOP or _STOP_LIMIT")
	}
	if or.TIF, ok = tifs[req.GetTimeInForce()]; !ok {
		return nil, or, errs.Invalid("time_in_force", "unknown value %d", req.GetTimeInForce())
	}
	if or.STP, ok = stps[req.GetSelfTradePrevention()]; !ok {
		return nil, or, errs.Invalid("self_trade_prevention", "unknown value %d", req.GetSelfTradePrevention())
	}
	if req.GetQuantity() == "" {
		return nil, or, errs.Invalid("quantity", "is required")
	}
	if or.Qty, err = spec.Lots("quantity", req.GetQuantity()); err != nil {
		return nil, or, err
	}
	if or.Price, err = optionalTicks(spec, "price", req.GetPrice()); err != nil {
		return nil, or, err
	}
	if or.TriggerPrice, err = optionalTicks(spec, "trigger_price", req.GetTriggerPrice()); err != nil {
		return nil, or, err
	}
	if req.GetDisplayQuantity() != "" {
		if or.DisplayQty, err = spec.Lots("display_quantity", req.GetDisplayQuantity()); err != nil {
			return nil, or, err
		}
	}
	if t := req.GetExpireTime(); t != nil {
		if err := t.CheckValid(); err != nil {
			return nil, or, errs.Invalid("expire_time", "%v", err)
		}
		or.ExpireAt = t.AsTime().UnixNano()
	}
	return spec, or, nil
}

func optionalTicks(spec *exchange.Spec, field, v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	return spec.Ticks(field, v)
}

func (s *Server) amendRequest(req *matchingv1.AmendOrderRequest) (*exchange.Spec, exchange.AmendRequest, error) {
	ar := exchange.AmendRequest{OrderRef: exchange.OrderRef{Account: req.GetAccountId(), Symbol: req.GetSymbol(), OrderID: req.GetOrderId(), ClientOrderID: req.GetClientOrderId()}}
	spec, err := s.x.Spec(req.GetSymbol())
	if err != nil {
		return nil, ar, err
	}
	if ar.Price, err = optionalTicks(spec, "price", req.GetPrice()); err != nil {
		return nil, ar, err
	}
	if ar.TriggerPrice, err = optionalTicks(spec, "trigger_price", req.GetTriggerPrice()); err != nil {
		return nil, ar, err
	}
	if req.GetQuantity() != "" {
		if ar.Qty, err = spec.Lots("quantity", req.GetQuantity()); err != nil {
			return nil, ar, err
		}
	}
	return spec, ar, nil
}
