// Package grpcapi exposes the exchange as bourse.matching.v1.MatchingService: it checks who may act
// for which account, parses decimal strings with the symbol's rules, and waits for the exchange's
// answer. Domain errors become status codes in the server runtime.
package grpcapi

import (
	"context"

	"github.com/bourse-dev/bourse/pkg/auth"
	"github.com/bourse-dev/bourse/pkg/errs"
	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
	"github.com/bourse-dev/bourse/services/matching/internal/exchange"
)

// Policy: accounts trade and read market data (order calls check the account in their handlers);
// symbols and settlement control are for operators. Every method is listed: a missing one is refused
// to everyone.
var Policy = auth.Policy{
	matchingv1.MatchingService_ListSymbols_FullMethodName:      auth.Accounts,
	matchingv1.MatchingService_GetBook_FullMethodName:          auth.Accounts,
	matchingv1.MatchingService_StreamMarketData_FullMethodName: auth.Accounts,
	matchingv1.MatchingService_SubmitOrder_FullMethodName:      auth.Accounts,
	matchingv1.MatchingService_CancelOrder_FullMethodName:      auth.Accounts,
	matchingv1.MatchingService_CancelAllOrders_FullMethodName:  auth.Accounts,
	matchingv1.MatchingService_AmendOrder_FullMethodName:       auth.Accounts,
	matchingv1.MatchingService_GetOrder_FullMethodName:         auth.Accounts,
	matchingv1.MatchingService_ListOrders_FullMethodName:       auth.Accounts,
	matchingv1.MatchingService_StreamOrders_FullMethodName:     auth.Accounts,

	matchingv1.MatchingService_AddSymbol_FullMethodName:           auth.AdminOnly,
	matchingv1.MatchingService_GetSettlementStatus_FullMethodName: auth.AdminOnly,
	matchingv1.MatchingService_ResumeSettlement_FullMethodName:    auth.AdminOnly,
}

// Server implements matchingv1.MatchingServiceServer.
type Server struct {
	matchingv1.UnimplementedMatchingServiceServer
	x *exchange.Exchange
	// MarketDataBuffer is how many updates a slow market-data subscriber may lag before it is cut off.
	MarketDataBuffer int
	// MaxInFlight bounds the commands one StreamOrders stream may have unanswered; a stream with
	// twice as many answers waiting for its client is cut off.
	MaxInFlight int
	// Draining, when closed, ends market-data streams so clients reconnect elsewhere.
	Draining <-chan struct{}
}

// New returns the gRPC server over x.
func New(x *exchange.Exchange) *Server {
	return &Server{x: x, MarketDataBuffer: 4096, MaxInFlight: 8192}
}

// await runs an exchange call and waits for its answer or the caller's deadline. A command whose
// caller gave up may still complete: the client finds out with GetOrder by client_order_id.
func await(ctx context.Context, call func(done func(exchange.Result))) (exchange.Result, error) {
	ch := make(chan exchange.Result, 1)
	call(func(r exchange.Result) { ch <- r })
	select {
	case r := <-ch:
		return r, r.Err
	case <-ctx.Done():
		return exchange.Result{}, ctx.Err()
	}
}

func (s *Server) AddSymbol(ctx context.Context, req *matchingv1.AddSymbolRequest) (*matchingv1.AddSymbolResponse, error) {
	sym := req.GetSymbol()
	if sym == nil {
		return nil, errs.Invalid("symbol", "is required")
	}
	spec, err := s.x.AddSymbol(ctx, exchange.SpecInput{Symbol: sym.GetSymbol(), TickSize: sym.GetTickSize(), LotSize: sym.GetLotSize(),
		MinQty: sym.GetMinQuantity(), MaxQty: sym.GetMaxQuantity(), MaxPrice: sym.GetMaxPrice(), MarketProtection: sym.GetMarketProtection()})
	if err != nil {
		return nil, err
	}
	return &matchingv1.AddSymbolResponse{Symbol: specToProto(&spec)}, nil
}

func (s *Server) ListSymbols(context.Context, *matchingv1.ListSymbolsRequest) (*matchingv1.ListSymbolsResponse, error) {
	specs := s.x.Symbols()
	resp := &matchingv1.ListSymbolsResponse{}
	for i := range specs {
		resp.Symbols = append(resp.Symbols, specToProto(&specs[i]))
	}
	return resp, nil
}

func (s *Server) SubmitOrder(ctx context.Context, req *matchingv1.SubmitOrderRequest) (*matchingv1.SubmitOrderResponse, error) {
	if err := auth.RequireAccess(ctx, req.GetAccountId()); err != nil {
		return nil, err
	}
	spec, or, err := s.orderRequest(req)
	if err != nil {
		return nil, err
	}
	r, err := await(ctx, func(done func(exchange.Result)) { s.x.Submit(ctx, or, done) })
	if err != nil {
		return nil, err
	}
	return &matchingv1.SubmitOrderResponse{Order: orderToProto(spec, &r.Order), Fills: fillsToProto(spec, r.Fills), Duplicate: r.Duplicate}, nil
}

// orderRefRequest names one order of an account; CancelOrderRequest and GetOrderRequest both are one.
type orderRefRequest interface {
	GetAccountId() string
	GetSymbol() string
	GetOrderId() uint64
	GetClientOrderId() string
}

// onOrder checks access, runs call on the named order and renders the order it answers with.
func (s *Server) onOrder(ctx context.Context, req orderRefRequest, call func(exchange.OrderRef, func(exchange.Result))) (*matchingv1.Order, error) {
	if err := auth.RequireAccess(ctx, req.GetAccountId()); err != nil {
		return nil, err
	}
	spec, err := s.x.Spec(req.GetSymbol())
	if err != nil {
		return nil, err
	}
	ref := exchange.OrderRef{Account: req.GetAccountId(), Symbol: req.GetSymbol(), OrderID: req.GetOrderId(), ClientOrderID: req.GetClientOrderId()}
	r, err := await(ctx, func(done func(exchange.Result)) { call(ref, done) })
	if err != nil {
		return nil, err
	}
	return orderToProto(spec, &r.Order), nil
}

func (s *Server) CancelOrder(ctx context.Context, req *matchingv1.CancelOrderRequest) (*matchingv1.CancelOrderResponse, error) {
	o, err := s.onOrder(ctx, req, func(ref exchange.OrderRef, done func(exchange.Result)) { s.x.CancelTraced(ctx, ref, done) })
	if err != nil {
		return nil, err
	}
	return &matchingv1.CancelOrderResponse{Order: o}, nil
}

func (s *Server) CancelAllOrders(ctx context.Context, req *matchingv1.CancelAllOrdersRequest) (*matchingv1.CancelAllOrdersResponse, error) {
	if err := auth.RequireAccess(ctx, req.GetAccountId()); err != nil {
		return nil, err
	}
	r, err := await(ctx, func(done func(exchange.Result)) { s.x.CancelAll(req.GetAccountId(), req.GetSymbol(), done) })
	if err != nil {
		return nil, err
	}
	return &matchingv1.CancelAllOrdersResponse{Cancelled: uint32(r.Cancelled)}, nil
}

func (s *Server) AmendOrder(ctx context.Context, req *matchingv1.AmendOrderRequest) (*matchingv1.AmendOrderResponse, error) {
	if err := auth.RequireAccess(ctx, req.GetAccountId()); err != nil {
		return nil, err
	}
	spec, ar, err := s.amendRequest(req)
	if err != nil {
		return nil, err
	}
	r, err := await(ctx, func(done func(exchange.Result)) { s.x.Amend(ctx, ar, done) })
	if err != nil {
		return nil, err
	}
	return &matchingv1.AmendOrderResponse{Order: orderToProto(spec, &r.Order), Fills: fillsToProto(spec, r.Fills)}, nil
}

func (s *Server) GetOrder(ctx context.Context, req *matchingv1.GetOrderRequest) (*matchingv1.GetOrderResponse, error) {
	o, err := s.onOrder(ctx, req, s.x.GetOrder)
	if err != nil {
		return nil, err
	}
	return &matchingv1.GetOrderResponse{Order: o}, nil
}

func (s *Server) GetBook(ctx context.Context, req *matchingv1.GetBookRequest) (*matchingv1.GetBookResponse, error) {
	depth, err := depthOf(req.GetDepth())
	if err != nil {
		return nil, err
	}
	if req.GetIncludeOrders() {
		if id, ok := auth.FromContext(ctx); !ok || !id.IsAdmin() {
			return nil, errs.New(errs.KindPermissionDenied, "include_orders: L3 shows every account's orders; admin only")
		}
	}
	type answer struct {
		v   *exchange.BookView
		err error
	}
	ch := make(chan answer, 1)
	s.x.Book(req.GetSymbol(), depth, req.GetIncludeOrders(), func(v *exchange.BookView, err error) { ch <- answer{v, err} })
	select {
	case a := <-ch:
		if a.err != nil {
			return nil, a.err
		}
		return viewToProto(a.v), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func depthOf(d uint32) (int, error) {
	switch {
	case d == 0:
		return 20, nil
	case d > 1000:
		return 0, errs.Invalid("depth", "at most 1000")
	}
	return int(d), nil
}
