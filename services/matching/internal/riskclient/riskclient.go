// Package riskclient implements exchange.Risk over the risk service's gRPC API.
package riskclient

import (
	"context"

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
func (c *Client) Check(ctx context.Context, b exchange.CheckBatch) (exchange.CheckAnswer, error) {
	req := &riskv1.CheckOrdersRequest{Orders: make([]*riskv1.CheckOrderRequest, len(b.Checks)), Owner: b.Owner,
		Session: b.Session, Generation: b.Generation}
	for i, ch := range b.Checks {
		typ := riskv1.OrderType_ORDER_TYPE_LIMIT
		if ch.Market {
			typ = riskv1.OrderType_ORDER_TYPE_MARKET
		}
		req.Orders[i] = &riskv1.CheckOrderRequest{AccountId: ch.Account, Symbol: ch.Spec.Symbol, Side: side(ch.Side), Type: typ,
			Price: ch.Spec.FormatPrice(ch.Price), Quantity: ch.Spec.FormatQty(ch.Qty), ReduceOnly: ch.ReduceOnly, Shard: ch.Shard,
			ReplacesReservationId: ch.Replaces}
	}
	resp, err := c.rc.CheckOrders(ctx, req)
	if err != nil {
		return exchange.CheckAnswer{}, server.FromStatus(err, "risk.CheckOrders")
	}
	if len(resp.GetResults()) != len(b.Checks) {
		return exchange.CheckAnswer{}, errs.New(errs.KindUnavailable, "risk.CheckOrders answered %d of %d orders", len(resp.GetResults()), len(b.Checks))
	}
	out := exchange.CheckAnswer{Decisions: make([]exchange.RiskDecision, len(b.Checks)), Incarnation: resp.GetRiskIncarnation()}
	for i, r := range resp.GetResults() {
		out.Decisions[i] = exchange.RiskDecision{Accepted: r.GetAccepted(), ReservationID: r.GetReservationId()}
		if !r.GetAccepted() {
			out.Decisions[i].Reason = r.GetRejectReason().String()
		}
	}
	return out, nil
}

func stream(s exchange.Stream) *riskv1.SettlementStream {
	return &riskv1.SettlementStream{Owner: s.Owner, Shard: s.Shard, Epoch: s.Epoch}
}

// Settle sends one part of a shard's settlement stream.
func (c *Client) Settle(ctx context.Context, b exchange.SettleBatch) (exchange.SettleAnswer, error) {
	req := &riskv1.SettleRequest{Stream: stream(b.Stream), After: b.After, Through: b.Through, Items: make([]*riskv1.SettlementItem, len(b.Items))}
	for i, it := range b.Items {
		if it.Release != 0 {
			req.Items[i] = &riskv1.SettlementItem{Seq: it.Seq, Item: &riskv1.SettlementItem_Release{Release: it.Release}}
			continue
		}
		if it.ShrinkID != 0 {
			req.Items[i] = &riskv1.SettlementItem{Seq: it.Seq, Item: &riskv1.SettlementItem_Shrink{Shrink: &riskv1.ReservationShrink{
				ReservationId: it.ShrinkID, Symbol: it.Trade.Spec.Symbol, Quantity: it.Trade.Spec.FormatQty(it.Shrink)}}}
			continue
		}
		t := &it.Trade
		req.Items[i] = &riskv1.SettlementItem{Seq: it.Seq, Item: &riskv1.SettlementItem_Trade{Trade: &riskv1.Trade{
			Symbol: t.Spec.Symbol, Price: t.Spec.FormatPrice(t.Price), Quantity: t.Spec.FormatQty(t.Qty), TakerSide: side(t.TakerSide),
			Buyer:  &riskv1.SettlementLeg{AccountId: t.Buyer.Account, ReservationId: t.Buyer.ReservationID},
			Seller: &riskv1.SettlementLeg{AccountId: t.Seller.Account, ReservationId: t.Seller.ReservationID},
			Time:   timestamppb.New(timeOf(t.Time)),
		}}}
	}
	resp, err := c.rc.Settle(ctx, req)
	if err != nil {
		return exchange.SettleAnswer{}, server.FromStatus(err, "risk.Settle")
	}
	return exchange.SettleAnswer{Watermark: resp.GetWatermark(), Incarnation: resp.GetRiskIncarnation(),
		HaltedAccounts: resp.GetHaltedAccounts(), AllHalted: resp.GetAllHalted(), Reclaimed: int(resp.GetReclaimed())}, nil
}

// Sync sends one chunk of a re-sync of a shard's reservations.
func (c *Client) Sync(ctx context.Context, b exchange.SyncBatch) (exchange.SyncAnswer, error) {
	req := &riskv1.SyncReservationsRequest{Stream: stream(b.Stream), Watermark: b.Watermark, Session: b.Session, Generation: b.Generation,
		Final: b.Final, Reservations: make([]*riskv1.Reservation, len(b.Reservations))}
	for i, r := range b.Reservations {
		req.Reservations[i] = &riskv1.Reservation{ReservationId: r.ID, AccountId: r.Account, Symbol: r.Spec.Symbol,
			Side: side(r.Side), Price: r.Spec.FormatPrice(r.Price), Quantity: r.Spec.FormatQty(r.Qty)}
	}
	resp, err := c.rc.SyncReservations(ctx, req)
	if err != nil {
		return exchange.SyncAnswer{}, server.FromStatus(err, "risk.SyncReservations")
	}
	return exchange.SyncAnswer{Uncovered: resp.GetUncovered(), Dropped: int(resp.GetDropped()), Incarnation: resp.GetRiskIncarnation()}, nil
}

// Release frees reservations of orders that never reached the journal.
func (c *Client) Release(ctx context.Context, ids []uint64) error {
	if _, err := c.rc.ReleaseReservations(ctx, &riskv1.ReleaseReservationsRequest{ReservationIds: ids}); err != nil {
		return server.FromStatus(err, "risk.ReleaseReservations")
	}
	return nil
}
