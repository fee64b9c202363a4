package grpcapi

import (
	"context"
	"errors"
	"fmt"

	"github.com/bourse-dev/bourse/pkg/auth"
	"github.com/bourse-dev/bourse/pkg/errs"
	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
	"github.com/bourse-dev/bourse/services/risk/internal/engine"
)

// maxBatch bounds one CheckOrders or ReleaseReservations call, so one request cannot hold the
// engine for long.
const maxBatch = 10_000

// CheckOrders vets a batch of orders; each item gets its own answer.
func (s *Server) CheckOrders(ctx context.Context, req *riskv1.CheckOrdersRequest) (*riskv1.CheckOrdersResponse, error) {
	orders := req.GetOrders()
	if len(orders) > maxBatch {
		return nil, errs.Invalid("orders", "at most %d per call", maxBatch)
	}
	// Access is checked for the whole batch first: a caller naming someone else's account is a bug
	// in the caller, not a per-order refusal, and nothing must be reserved for it.
	for i, o := range orders {
		if err := auth.RequireAccess(ctx, o.GetAccountId()); err != nil {
			return nil, errs.Wrap(errs.KindOf(err), err, "orders[%d].account_id", i)
		}
	}
	// An owner's reservations are replaced by its re-syncs, per shard; resolve each shard once.
	var owners map[uint32]engine.OwnerRef
	owner := func(shard uint32) (engine.OwnerRef, error) {
		if ref, ok := owners[shard]; ok {
			return ref, nil
		}
		ref, err := s.eng.Owner(req.GetOwner(), shard)
		if err != nil {
			return 0, errs.Wrap(errs.KindOf(err), err, "owner")
		}
		if owners == nil {
			owners = map[uint32]engine.OwnerRef{}
		}
		owners[shard] = ref
		return ref, nil
	}
	if req.GetOwner() != "" {
		if _, err := owner(0); err != nil {
			return nil, err
		}
	}
	results := make([]*riskv1.CheckOrdersResult, len(orders))
	for i, o := range orders {
		check, err := s.orderCheck(o)
		if err != nil {
			results[i] = &riskv1.CheckOrdersResult{RejectReason: invalidReason(err), Error: fmt.Sprintf("orders[%d].%s", i, err.Error())}
			continue
		}
		if req.GetOwner() != "" {
			if check.Owner, err = owner(o.GetShard()); err != nil {
				return nil, err
			}
			check.Session, check.Generation = req.GetSession(), req.GetGeneration()
		}
		id, reject := s.eng.CheckOrder(check)
		results[i] = &riskv1.CheckOrdersResult{Accepted: reject == engine.Accepted, ReservationId: id, RejectReason: rejectToProto(reject)}
	}
	return &riskv1.CheckOrdersResponse{Results: results, RiskIncarnation: s.incarnation()}, nil
}

// invalidReason maps a malformed order to the closest reject reason.
func invalidReason(err error) riskv1.RejectReason {
	if errs.KindOf(err) == errs.KindNotFound {
		return riskv1.RejectReason_REJECT_REASON_UNKNOWN_SYMBOL
	}
	var e *errs.Error
	if errors.As(err, &e) {
		switch e.Field {
		case "price":
			return riskv1.RejectReason_REJECT_REASON_INVALID_PRICE
		case "quantity":
			return riskv1.RejectReason_REJECT_REASON_INVALID_QUANTITY
		}
	}
	return riskv1.RejectReason_REJECT_REASON_INVALID_ORDER
}

// ReleaseReservations releases a batch; ids no longer open are counted, so repeating is harmless.
func (s *Server) ReleaseReservations(_ context.Context, req *riskv1.ReleaseReservationsRequest) (*riskv1.ReleaseReservationsResponse, error) {
	ids := req.GetReservationIds()
	if len(ids) > maxBatch {
		return nil, errs.Invalid("reservation_ids", "at most %d per call", maxBatch)
	}
	for i, id := range ids {
		if id == 0 {
			return nil, errs.Invalid(fmt.Sprintf("reservation_ids[%d]", i), "must be non-zero")
		}
	}
	var resp riskv1.ReleaseReservationsResponse
	for _, id := range ids {
		switch err := s.eng.Release(id); {
		case err == nil:
			resp.Released++
		case errs.KindOf(err) == errs.KindNotFound:
			resp.NotOpen++
		default:
			return nil, err
		}
	}
	return &resp, nil
}
