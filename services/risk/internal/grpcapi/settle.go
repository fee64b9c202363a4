package grpcapi

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
	"github.com/bourse-dev/bourse/pkg/money"
	"github.com/bourse-dev/bourse/services/risk/internal/engine"
)

// Settle applies the next part of a settlement stream and answers once it is durable.
func (s *Server) Settle(ctx context.Context, req *riskv1.SettleRequest) (*riskv1.SettleResponse, error) {
	b, err := s.settleBatch(req)
	if err != nil {
		return nil, err
	}
	res, err := durable(ctx, s, func(p engine.PersistFunc) (engine.SettleResult, error) { return s.eng.Settle(b, p) })
	if err != nil {
		return nil, err
	}
	out := &riskv1.SettleResponse{Watermark: res.Watermark, Applied: uint32(res.Applied), Skipped: uint32(res.Skipped),
		Unreserved: uint32(res.Unreserved), Reclaimed: uint32(res.Reclaimed), RiskIncarnation: s.incarnation()}
	if len(b.Items) == 0 && b.Through == 0 {
		out.AllHalted, out.HaltedAccounts = s.eng.Halted(maxHaltedListed)
	}
	return out, nil
}

// SyncReservations applies one chunk of an owner's re-sync of its reservations.
func (s *Server) SyncReservations(_ context.Context, req *riskv1.SyncReservationsRequest) (*riskv1.SyncReservationsResponse, error) {
	stream, err := streamFromProto("stream", req.GetStream())
	if err != nil {
		return nil, err
	}
	b := engine.SyncBatch{Stream: stream, Watermark: req.GetWatermark(), Session: req.GetSession(), Generation: req.GetGeneration(), Final: req.GetFinal()}
	if b.Reservations, err = s.reservations(req.GetReservations()); err != nil {
		return nil, err
	}
	res, err := s.eng.SyncReservations(b)
	if err != nil {
		return nil, err
	}
	return &riskv1.SyncReservationsResponse{Restored: uint32(res.Restored), Dropped: uint32(res.Dropped), Uncovered: res.Uncovered,
		RiskIncarnation: s.incarnation()}, nil
}

// Audit reports the totals the joint invariants are checked against.
func (s *Server) Audit(context.Context, *riskv1.AuditRequest) (*riskv1.AuditResponse, error) {
	a := s.eng.Audit()
	out := &riskv1.AuditResponse{Consistent: a.Problem == "", Problem: a.Problem, RiskIncarnation: s.incarnation(),
		Reservations: uint32(a.Reservations)}
	for _, as := range a.Assets {
		scale, err := s.assetScale("asset", as.Asset)
		if err != nil {
			return nil, err
		}
		out.Assets = append(out.Assets, &riskv1.AssetAudit{AssetId: as.Asset, Total: format(as.Total, scale), Reserved: format(as.Reserved, scale),
			Credits: format(as.Credits, scale), Debits: format(as.Debits, scale), Reservations: format(as.Reservations, scale)})
	}
	for st, wm := range a.Streams {
		out.Streams = append(out.Streams, &riskv1.StreamAudit{Stream: &riskv1.SettlementStream{Owner: st.Owner, Shard: st.Shard, Epoch: st.Epoch}, Watermark: wm})
	}
	for _, o := range a.Owners {
		out.Owners = append(out.Owners, &riskv1.OwnerAudit{Owner: o.Owner, Shard: o.Shard, Reservations: uint32(o.Reservations)})
	}
	return out, nil
}

func streamFromProto(field string, st *riskv1.SettlementStream) (engine.StreamID, error) {
	if st == nil {
		return engine.StreamID{}, errs.Invalid(field, "is required")
	}
	if st.GetOwner() == "" {
		return engine.StreamID{}, errs.Invalid(field+".owner", "is required")
	}
	if st.GetEpoch() == 0 {
		return engine.StreamID{}, errs.Invalid(field+".epoch", "is required")
	}
	return engine.StreamID{Owner: st.GetOwner(), Shard: st.GetShard(), Epoch: st.GetEpoch()}, nil
}

// maxHaltedListed bounds the halted accounts a probe's answer lists.
const maxHaltedListed = 1000

// maxSettleItems bounds one Settle call.
const maxSettleItems = 10_000

func (s *Server) settleBatch(req *riskv1.SettleRequest) (engine.SettleBatch, error) {
	stream, err := streamFromProto("stream", req.GetStream())
	if err != nil {
		return engine.SettleBatch{}, err
	}
	items := req.GetItems()
	if len(items) > maxSettleItems {
		return engine.SettleBatch{}, errs.Invalid("items", "at most %d per call", maxSettleItems)
	}
	b := engine.SettleBatch{Stream: stream, After: req.GetAfter(), Through: req.GetThrough(), Items: make([]engine.SettlementItem, len(items))}
	for i, it := range items {
		field := func(name string) string { return fmt.Sprintf("items[%d].%s", i, name) }
		out := engine.SettlementItem{Seq: it.GetSeq()}
		switch x := it.GetItem().(type) {
		case *riskv1.SettlementItem_Release:
			if x.Release == 0 {
				return b, errs.Invalid(field("release"), "must be non-zero")
			}
			out.Release = x.Release
		case *riskv1.SettlementItem_Shrink:
			sh := x.Shrink
			if sh.GetReservationId() == 0 {
				return b, errs.Invalid(field("shrink.reservation_id"), "is required")
			}
			_, qtyScale, _, err := s.symbolScales(field("shrink.symbol"), sh.GetSymbol())
			if err != nil {
				return b, err
			}
			qty, err := money.Positive(field("shrink.quantity"), sh.GetQuantity(), qtyScale)
			if err != nil {
				return b, err
			}
			out.Shrink = &engine.Shrink{ReservationID: sh.GetReservationId(), Qty: qty}
		case *riskv1.SettlementItem_Trade:
			t, err := s.trade(field("trade"), x.Trade)
			if err != nil {
				return b, err
			}
			out.Trade = t
		default:
			return b, errs.Invalid(field("item"), "must be a trade or a release")
		}
		b.Items[i] = out
	}
	return b, nil
}

func (s *Server) trade(field string, t *riskv1.Trade) (*engine.Trade, error) {
	f := func(name string) string { return field + "." + name }
	priceScale, qtyScale, _, err := s.symbolScales(f("symbol"), t.GetSymbol())
	if err != nil {
		return nil, err
	}
	taker, err := sideFromProto(f("taker_side"), t.GetTakerSide())
	if err != nil {
		return nil, err
	}
	out := &engine.Trade{Symbol: t.GetSymbol(), TakerSide: taker,
		Buyer:  engine.Leg{Account: t.GetBuyer().GetAccountId(), ReservationID: t.GetBuyer().GetReservationId()},
		Seller: engine.Leg{Account: t.GetSeller().GetAccountId(), ReservationID: t.GetSeller().GetReservationId()}}
	if out.Buyer.Account == "" {
		return nil, errs.Invalid(f("buyer.account_id"), "is required")
	}
	if out.Seller.Account == "" {
		return nil, errs.Invalid(f("seller.account_id"), "is required")
	}
	if out.Price, err = money.Positive(f("price"), t.GetPrice(), priceScale); err != nil {
		return nil, err
	}
	if out.Qty, err = money.Positive(f("quantity"), t.GetQuantity(), qtyScale); err != nil {
		return nil, err
	}
	if t.GetTime() == nil {
		return nil, errs.Invalid(f("time"), "is required")
	}
	if err := t.GetTime().CheckValid(); err != nil {
		return nil, errs.Invalid(f("time"), "%v", err)
	}
	out.Time = t.GetTime().AsTime().UnixNano()
	return out, nil
}

// reservations converts the open orders of a restore or re-sync.
func (s *Server) reservations(in []*riskv1.Reservation) ([]engine.RestoredReservation, error) {
	out := make([]engine.RestoredReservation, len(in))
	for i, r := range in {
		field := func(name string) string { return fmt.Sprintf("reservations[%d].%s", i, name) }
		side, err := sideFromProto(field("side"), r.GetSide())
		if err != nil {
			return nil, err
		}
		priceScale, qtyScale, _, err := s.symbolScales(field("symbol"), r.GetSymbol())
		if err != nil {
			return nil, err
		}
		rr := engine.RestoredReservation{ID: r.GetReservationId(), Account: r.GetAccountId(), Symbol: r.GetSymbol(), Side: side}
		if rr.Price, err = money.Positive(field("price"), r.GetPrice(), priceScale); err != nil {
			return nil, err
		}
		if rr.Qty, err = money.Positive(field("quantity"), r.GetQuantity(), qtyScale); err != nil {
			return nil, err
		}
		out[i] = rr
	}
	return out, nil
}

// incarnation is the risk engine's incarnation: it changes whenever risk restarts with its durable
// state, and so whenever the reservations (kept in memory) were lost.
func (s *Server) incarnation() uint64 {
	if e, ok := any(s.eng).(interface{ Incarnation() uint64 }); ok {
		if inc := e.Incarnation(); inc != 0 {
			return inc
		}
	}
	// An engine without a durable incarnation: every process is a new one, which is exactly when
	// reservations are lost.
	return processIncarnation
}

var processIncarnation = func() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return uint64(time.Now().UnixNano()) | 1<<63
	}
	return binary.BigEndian.Uint64(b[:]) | 1<<63 // never 0, and apart from small durable counters
}()
