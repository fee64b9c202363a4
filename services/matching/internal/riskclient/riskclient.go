// Package riskclient implements exchange.Risk over the risk service's gRPC API.
package riskclient

import (
	"context"
	"strconv"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bourse-dev/bourse/pkg/errs"
	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
	"github.com/bourse-dev/bourse/pkg/server"
	"github.com/bourse-dev/bourse/services/matching/internal/book"
	"github.com/bourse-dev/bourse/services/matching/internal/exchange"
)

// Client is the risk service as the exchange sees it.
type Client struct {
	rc riskv1.RiskServiceClient
}

// New wraps a risk service client.
func New(rc riskv1.RiskServiceClient) *Client { return &Client{rc: rc} }

var _ exchange.Risk = (*Client)(nil)

func side(s book.Side) riskv1.Side {
	if s == book.Buy {
		return riskv1.Side_SIDE_BUY
	}
	return riskv1.Side_SIDE_SELL
}

// Symbol reads the symbol's scales, its quote asset's scale and the taker fee.
func (c *Client) Symbol(ctx context.Context, symbol string) (exchange.RiskSymbol, error) {
	resp, err := c.rc.ListSymbols(ctx, &riskv1.ListSymbolsRequest{})
	if err != nil {
		return exchange.RiskSymbol{}, server.FromStatus(err, "risk.ListSymbols")
	}
	for _, s := range resp.GetSymbols() {
		if s.GetSymbol() != symbol {
			continue
		}
		for _, a := range resp.GetAssets() {
			if a.GetAssetId() == s.GetQuoteAsset() {
				return exchange.RiskSymbol{PriceScale: uint8(s.GetPriceScale()), QtyScale: uint8(s.GetQtyScale()),
					QuoteScale: uint8(a.GetScale()), TakerFeeRate: s.GetTakerFeeRate()}, nil
			}
		}
		return exchange.RiskSymbol{}, errs.New(errs.KindFailedPrecondition, "risk has symbol %q but not its quote asset %q", symbol, s.GetQuoteAsset())
	}
	return exchange.RiskSymbol{}, errs.New(errs.KindNotFound, "symbol.symbol: the risk service has no symbol %q; define it there first", symbol)
}

// Check sends one CheckOrders call for the whole batch.
func (c *Client) Check(ctx context.Context, checks []exchange.RiskCheck) ([]exchange.RiskDecision, error) {
	req := &riskv1.CheckOrdersRequest{Orders: make([]*riskv1.CheckOrderRequest, len(checks))}
	for i, ch := range checks {
		typ := riskv1.OrderType_ORDER_TYPE_LIMIT
		if ch.Market {
			typ = riskv1.OrderType_ORDER_TYPE_MARKET
		}
		req.Orders[i] = &riskv1.CheckOrderRequest{AccountId: ch.Account, Symbol: ch.Spec.Symbol, Side: side(ch.Side), Type: typ,
			Price: ch.Spec.FormatPrice(ch.Price), Quantity: ch.Spec.FormatQty(ch.Qty), ReduceOnly: ch.ReduceOnly}
	}
	resp, err := c.rc.CheckOrders(ctx, req)
	if err != nil {
		return nil, server.FromStatus(err, "risk.CheckOrders")
	}
	if len(resp.GetResults()) != len(checks) {
		return nil, errs.New(errs.KindUnavailable, "risk.CheckOrders answered %d of %d orders", len(resp.GetResults()), len(checks))
	}
	out := make([]exchange.RiskDecision, len(checks))
	for i, r := range resp.GetResults() {
		out[i] = exchange.RiskDecision{Accepted: r.GetAccepted(), ReservationID: r.GetReservationId()}
		if !r.GetAccepted() {
			out[i].Reason = r.GetRejectReason().String()
		}
	}
	return out, nil
}

// Settle applies executions, then releases reservations.
func (c *Client) Settle(ctx context.Context, execs []exchange.Execution, releases []uint64) error {
	if len(execs) > 0 {
		req := &riskv1.ApplyExecutionsRequest{Executions: make([]*riskv1.Execution, len(execs))}
		for i, x := range execs {
			fee := "0"
			if x.Taker {
				fee = x.Spec.TakerFee(x.Price, x.Qty)
			}
			req.Executions[i] = &riskv1.Execution{ExecId: x.ExecID, ReservationId: x.ReservationID, AccountId: x.Account,
				Symbol: x.Spec.Symbol, Side: side(x.Side), Price: x.Spec.FormatPrice(x.Price), Quantity: x.Spec.FormatQty(x.Qty),
				Fee: fee, Time: timestamppb.New(timeOf(x.Time))}
		}
		if _, err := c.rc.ApplyExecutions(ctx, req); err != nil {
			return server.FromStatus(err, "risk.ApplyExecutions")
		}
	}
	if len(releases) > 0 {
		if _, err := c.rc.ReleaseReservations(ctx, &riskv1.ReleaseReservationsRequest{ReservationIds: releases}); err != nil {
			return server.FromStatus(err, "risk.ReleaseReservations")
		}
	}
	return nil
}

// Restore recreates open orders' reservations in a restarted risk service.
func (c *Client) Restore(ctx context.Context, rs []exchange.Reservation) error {
	const chunk = 1000
	for len(rs) > 0 {
		n := min(len(rs), chunk)
		req := &riskv1.RestoreReservationsRequest{Reservations: make([]*riskv1.Reservation, n)}
		for i, r := range rs[:n] {
			req.Reservations[i] = &riskv1.Reservation{ReservationId: r.ID, AccountId: r.Account, Symbol: r.Spec.Symbol,
				Side: side(r.Side), Price: r.Spec.FormatPrice(r.Price), Quantity: r.Spec.FormatQty(r.Qty)}
		}
		if _, err := c.rc.RestoreReservations(ctx, req); err != nil {
			return server.FromStatus(err, "risk.RestoreReservations ("+strconv.Itoa(n)+" reservations)")
		}
		rs = rs[n:]
	}
	return nil
}
