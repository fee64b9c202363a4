// Package grpcapi exposes the risk engine as bourse.risk.v1.RiskService: it checks who may call what,
// converts decimal strings to the engine's integer units and back, and makes every durable change
// wait for its commit before answering.
package grpcapi

import (
	"context"

	"github.com/bourse-dev/bourse/pkg/auth"
	"github.com/bourse-dev/bourse/pkg/errs"
	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
	"github.com/bourse-dev/bourse/services/risk/internal/engine"
	"github.com/bourse-dev/bourse/services/risk/internal/store"
)

// Policy: risk holds the money, so a customer key reads its own account and nothing else; trading
// reaches risk through matching and money moves through payment. Configuration, audits and kill
// switches are for operators. Every method is listed: a missing one is refused to everyone.
var Policy = auth.Policy{
	riskv1.RiskService_GetAccount_FullMethodName: auth.Accounts,

	riskv1.RiskService_ListSymbols_FullMethodName:         fromMatching,
	riskv1.RiskService_CheckOrder_FullMethodName:          fromMatching,
	riskv1.RiskService_CheckOrders_FullMethodName:         fromMatching,
	riskv1.RiskService_ReleaseReservation_FullMethodName:  fromMatching,
	riskv1.RiskService_ReleaseReservations_FullMethodName: fromMatching,
	riskv1.RiskService_RestoreReservations_FullMethodName: fromMatching,
	riskv1.RiskService_ApplyExecutions_FullMethodName:     fromMatching,
	riskv1.RiskService_Settle_FullMethodName:              fromMatching,
	riskv1.RiskService_SyncReservations_FullMethodName:    fromMatching,

	riskv1.RiskService_Credit_FullMethodName: fromPayment,
	riskv1.RiskService_Debit_FullMethodName:  fromPayment,

	riskv1.RiskService_DefineAsset_FullMethodName:     auth.AdminOnly,
	riskv1.RiskService_DefineSymbol_FullMethodName:    auth.AdminOnly,
	riskv1.RiskService_OpenAccount_FullMethodName:     auth.AdminOnly,
	riskv1.RiskService_SetLimits_FullMethodName:       auth.AdminOnly,
	riskv1.RiskService_SetTradingState_FullMethodName: auth.AdminOnly,
	riskv1.RiskService_Audit_FullMethodName:           auth.AdminOnly,
}

var (
	fromMatching = auth.Services("matching")
	fromPayment  = auth.Services("payment")
)

// Server implements riskv1.RiskServiceServer.
type Server struct {
	riskv1.UnimplementedRiskServiceServer
	eng   *engine.Engine
	store *store.Store
	// fail stops the service when a change applied in memory could not be made durable.
	fail func(error)
	now  func() int64
}

// New returns the gRPC server over eng, persisting through st.
func New(eng *engine.Engine, st *store.Store, fail func(error), now func() int64) *Server {
	return &Server{eng: eng, store: st, fail: fail, now: now}
}

// durable runs one engine mutation with a persister and answers only once its events are committed.
func durable[R any](ctx context.Context, s *Server, call func(engine.PersistFunc) (R, error)) (R, error) {
	p := s.store.NewPersister(ctx)
	res, err := call(p.Persist)
	if err != nil {
		return res, err
	}
	if err := p.Wait(); err != nil {
		s.fail(err)
		var zero R
		return zero, errs.Wrap(errs.KindUnavailable, err, "store failed; the service is restarting")
	}
	return res, nil
}

func durableErr(ctx context.Context, s *Server, call func(engine.PersistFunc) error) error {
	_, err := durable(ctx, s, func(p engine.PersistFunc) (struct{}, error) { return struct{}{}, call(p) })
	return err
}

func (s *Server) DefineAsset(ctx context.Context, req *riskv1.DefineAssetRequest) (*riskv1.DefineAssetResponse, error) {
	a := req.GetAsset()
	if a.GetScale() > 18 {
		return nil, errs.Invalid("asset.scale", "must be at most 18")
	}
	err := durableErr(ctx, s, func(p engine.PersistFunc) error {
		return s.eng.DefineAsset(engine.Asset{ID: a.GetAssetId(), Scale: uint8(a.GetScale())}, p)
	})
	if err != nil {
		return nil, err
	}
	return &riskv1.DefineAssetResponse{}, nil
}

func (s *Server) DefineSymbol(ctx context.Context, req *riskv1.DefineSymbolRequest) (*riskv1.DefineSymbolResponse, error) {
	spec, err := s.symbolSpec(req.GetSymbol())
	if err != nil {
		return nil, err
	}
	if err := durableErr(ctx, s, func(p engine.PersistFunc) error { return s.eng.DefineSymbol(spec, p) }); err != nil {
		return nil, err
	}
	return &riskv1.DefineSymbolResponse{}, nil
}

func (s *Server) ListSymbols(context.Context, *riskv1.ListSymbolsRequest) (*riskv1.ListSymbolsResponse, error) {
	out := &riskv1.ListSymbolsResponse{}
	for _, a := range s.eng.Assets() {
		out.Assets = append(out.Assets, &riskv1.Asset{AssetId: a.ID, Scale: uint32(a.Scale)})
	}
	for _, sym := range s.eng.Symbols() {
		out.Symbols = append(out.Symbols, s.symbolToProto(sym))
	}
	return out, nil
}

func (s *Server) OpenAccount(ctx context.Context, req *riskv1.OpenAccountRequest) (*riskv1.OpenAccountResponse, error) {
	limits, err := s.limitsFromProto("limits", "", req.GetLimits())
	if err != nil {
		return nil, err
	}
	err = durableErr(ctx, s, func(p engine.PersistFunc) error {
		return s.eng.OpenAccount(engine.AccountSpec{ID: req.GetAccountId(), Limits: limits}, p)
	})
	if err != nil {
		return nil, err
	}
	return &riskv1.OpenAccountResponse{}, nil
}

func (s *Server) Credit(ctx context.Context, req *riskv1.CreditRequest) (*riskv1.CreditResponse, error) {
	balance, dup, err := s.transfer(ctx, req.GetAccountId(), req.GetAssetId(), req.GetAmount(), req.GetRef(), s.eng.Credit)
	if err != nil {
		return nil, err
	}
	return &riskv1.CreditResponse{Balance: balance, Duplicate: dup}, nil
}

func (s *Server) Debit(ctx context.Context, req *riskv1.DebitRequest) (*riskv1.DebitResponse, error) {
	if err := auth.RequireAccess(ctx, req.GetAccountId()); err != nil {
		return nil, err
	}
	balance, dup, err := s.transfer(ctx, req.GetAccountId(), req.GetAssetId(), req.GetAmount(), req.GetRef(), s.eng.Debit)
	if err != nil {
		return nil, err
	}
	return &riskv1.DebitResponse{Balance: balance, Duplicate: dup}, nil
}

// transfer runs a durable credit or debit and returns the new balance as a decimal.
func (s *Server) transfer(ctx context.Context, account, asset, amount, ref string,
	apply func(engine.Transfer, engine.PersistFunc) (engine.TransferResult, error)) (balance string, duplicate bool, err error) {
	t, scale, err := s.transferFromRequest(account, asset, amount, ref)
	if err != nil {
		return "", false, err
	}
	res, err := durable(ctx, s, func(p engine.PersistFunc) (engine.TransferResult, error) { return apply(t, p) })
	if err != nil {
		return "", false, err
	}
	return format(res.Total, scale), res.Duplicate, nil
}

func (s *Server) CheckOrder(ctx context.Context, req *riskv1.CheckOrderRequest) (*riskv1.CheckOrderResponse, error) {
	if err := auth.RequireAccess(ctx, req.GetAccountId()); err != nil {
		return nil, err
	}
	check, err := s.orderCheck(req)
	if err != nil {
		return nil, err
	}
	id, reject := s.eng.CheckOrder(check)
	if reject == engine.RejectUnknownAccount {
		// A typo in the request, not a business refusal: answer like every other unknown name.
		return nil, errs.New(errs.KindNotFound, "account_id: unknown account %q", check.Account)
	}
	return &riskv1.CheckOrderResponse{Accepted: reject == engine.Accepted, ReservationId: id, RejectReason: rejectToProto(reject)}, nil
}

func (s *Server) ReleaseReservation(_ context.Context, req *riskv1.ReleaseReservationRequest) (*riskv1.ReleaseReservationResponse, error) {
	if req.GetReservationId() == 0 {
		return nil, errs.Invalid("reservation_id", "is required")
	}
	if err := s.eng.Release(req.GetReservationId()); err != nil {
		return nil, err
	}
	return &riskv1.ReleaseReservationResponse{}, nil
}

func (s *Server) RestoreReservations(_ context.Context, req *riskv1.RestoreReservationsRequest) (*riskv1.RestoreReservationsResponse, error) {
	restored, err := s.reservations(req.GetReservations())
	if err != nil {
		return nil, err
	}
	for i, rr := range restored {
		if err := s.eng.RestoreReservation(rr); err != nil {
			return &riskv1.RestoreReservationsResponse{Restored: uint32(i)}, err
		}
	}
	return &riskv1.RestoreReservationsResponse{Restored: uint32(len(restored))}, nil
}

func (s *Server) ApplyExecutions(ctx context.Context, req *riskv1.ApplyExecutionsRequest) (*riskv1.ApplyExecutionsResponse, error) {
	execs, err := s.executions(req.GetExecutions())
	if err != nil {
		return nil, err
	}
	res, err := durable(ctx, s, func(p engine.PersistFunc) (engine.ExecutionsResult, error) { return s.eng.ApplyExecutions(execs, p) })
	if err != nil {
		return nil, err
	}
	return &riskv1.ApplyExecutionsResponse{Applied: uint32(res.Applied), Duplicates: uint32(res.Duplicates)}, nil
}

func (s *Server) GetAccount(ctx context.Context, req *riskv1.GetAccountRequest) (*riskv1.GetAccountResponse, error) {
	if req.GetAccountId() == "" {
		return nil, errs.Invalid("account_id", "is required")
	}
	if err := auth.RequireAccess(ctx, req.GetAccountId()); err != nil {
		return nil, err
	}
	view, err := s.eng.Account(req.GetAccountId())
	if err != nil {
		return nil, err
	}
	// The view may show changes whose commit is still in flight: answer once they are durable
	// (at once when nothing is in flight), never with a balance a failed commit takes back.
	if err := s.store.Sync(ctx); err != nil {
		return nil, err
	}
	return &riskv1.GetAccountResponse{Account: s.accountToProto(view)}, nil
}

func (s *Server) SetLimits(ctx context.Context, req *riskv1.SetLimitsRequest) (*riskv1.SetLimitsResponse, error) {
	limits, err := s.limitsFromProto("limits", req.GetSymbol(), req.GetLimits())
	if err != nil {
		return nil, err
	}
	err = durableErr(ctx, s, func(p engine.PersistFunc) error {
		return s.eng.SetLimits(engine.LimitsChange{Account: req.GetAccountId(), Symbol: req.GetSymbol(), Limits: limits, Clear: req.GetClear()}, p)
	})
	if err != nil {
		return nil, err
	}
	return &riskv1.SetLimitsResponse{}, nil
}

func (s *Server) SetTradingState(ctx context.Context, req *riskv1.SetTradingStateRequest) (*riskv1.SetTradingStateResponse, error) {
	state, err := tradingStateFromProto(req.GetState())
	if err != nil {
		return nil, err
	}
	err = durableErr(ctx, s, func(p engine.PersistFunc) error {
		return s.eng.SetTradingState(engine.TradingStateChange{Account: req.GetAccountId(), State: state}, p)
	})
	if err != nil {
		return nil, err
	}
	return &riskv1.SetTradingStateResponse{}, nil
}
