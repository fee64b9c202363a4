// Package grpcapi exposes the simulated acquirer as bourse.acquirer.v1.AcquirerService: it validates
// requests (InvalidArgument naming the field), converts them for the domain, and maps the domain's
// outcomes to answers and its errors to codes, in one place (status).
package grpcapi

import (
	"context"
	"errors"
	"strconv"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bourse-dev/bourse/pkg/auth"
	"github.com/bourse-dev/bourse/pkg/errs"
	acquirerv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/acquirer/v1"
	"github.com/bourse-dev/bourse/pkg/server"
	"github.com/bourse-dev/bourse/services/payment/internal/acquirer"
)

// Policy: the processor calls are payment's (its service identity) and operators'; the test surface,
// which shows every operation and can break the acquirer, is for admins only.
var Policy = auth.Policy{
	acquirerv1.AcquirerService_Authorize_FullMethodName: fromPayment,
	acquirerv1.AcquirerService_Capture_FullMethodName:   fromPayment,
	acquirerv1.AcquirerService_Void_FullMethodName:      fromPayment,
	acquirerv1.AcquirerService_Refund_FullMethodName:    fromPayment,
	acquirerv1.AcquirerService_Payout_FullMethodName:    fromPayment,
	acquirerv1.AcquirerService_Lookup_FullMethodName:    fromPayment,

	acquirerv1.AcquirerService_ListOperations_FullMethodName: auth.AdminOnly,
	acquirerv1.AcquirerService_SetFaults_FullMethodName:      auth.AdminOnly,
	acquirerv1.AcquirerService_GetStats_FullMethodName:       auth.AdminOnly,
}

var fromPayment = auth.Services("payment")

// NotActedDomain and NotActedReason mark, in an error's ErrorInfo detail, an acting call the acquirer
// refused before deciding anything: nothing was stored, the caller may go to another processor.
// Every other error from an acting call leaves its outcome unknown.
const (
	NotActedDomain = "acquirer.bourse"
	NotActedReason = "NOT_ACTED"
)

// Server implements acquirerv1.AcquirerServiceServer.
type Server struct {
	acquirerv1.UnimplementedAcquirerServiceServer
	acq *acquirer.Acquirer
}

// New serves acq.
func New(acq *acquirer.Acquirer) *Server { return &Server{acq: acq} }

// act validates and converts a request, then decides it (or replays its key's first outcome).
func (s *Server) act(ctx context.Context, req acquirer.Request, err error) (*acquirerv1.Operation, bool, error) {
	if err != nil {
		return nil, false, err
	}
	op, replayed, err := s.acq.Act(ctx, req)
	if err != nil {
		return nil, false, toStatus(err)
	}
	return operationPB(op), replayed, nil
}

func (s *Server) Authorize(ctx context.Context, r *acquirerv1.AuthorizeRequest) (*acquirerv1.AuthorizeResponse, error) {
	req, err := authorizeRequest(r)
	op, replayed, err := s.act(ctx, req, err)
	if err != nil {
		return nil, err
	}
	return &acquirerv1.AuthorizeResponse{Operation: op, Replayed: replayed}, nil
}

func (s *Server) Capture(ctx context.Context, r *acquirerv1.CaptureRequest) (*acquirerv1.CaptureResponse, error) {
	req, err := captureRequest(r)
	op, replayed, err := s.act(ctx, req, err)
	if err != nil {
		return nil, err
	}
	return &acquirerv1.CaptureResponse{Operation: op, Replayed: replayed}, nil
}

func (s *Server) Void(ctx context.Context, r *acquirerv1.VoidRequest) (*acquirerv1.VoidResponse, error) {
	req, err := voidRequest(r)
	op, replayed, err := s.act(ctx, req, err)
	if err != nil {
		return nil, err
	}
	return &acquirerv1.VoidResponse{Operation: op, Replayed: replayed}, nil
}

func (s *Server) Refund(ctx context.Context, r *acquirerv1.RefundRequest) (*acquirerv1.RefundResponse, error) {
	req, err := refundRequest(r)
	op, replayed, err := s.act(ctx, req, err)
	if err != nil {
		return nil, err
	}
	return &acquirerv1.RefundResponse{Operation: op, Replayed: replayed}, nil
}

func (s *Server) Payout(ctx context.Context, r *acquirerv1.PayoutRequest) (*acquirerv1.PayoutResponse, error) {
	req, err := payoutRequest(r)
	op, replayed, err := s.act(ctx, req, err)
	if err != nil {
		return nil, err
	}
	return &acquirerv1.PayoutResponse{Operation: op, Replayed: replayed}, nil
}

func (s *Server) Lookup(ctx context.Context, r *acquirerv1.LookupRequest) (*acquirerv1.LookupResponse, error) {
	kind, err := kindOf("kind", r.GetKind())
	if err != nil {
		return nil, err
	}
	if err := keyErr(r.GetKey()); err != nil {
		return nil, toStatus(err)
	}
	op, found, err := s.acq.Lookup(ctx, kind, r.GetKey())
	if err != nil {
		return nil, toStatus(err)
	}
	if !found {
		return &acquirerv1.LookupResponse{}, nil
	}
	return &acquirerv1.LookupResponse{Found: true, Operation: operationPB(op)}, nil
}

const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

func (s *Server) ListOperations(_ context.Context, r *acquirerv1.ListOperationsRequest) (*acquirerv1.ListOperationsResponse, error) {
	var kind acquirer.Kind
	if r.GetKind() != acquirerv1.OperationKind_OPERATION_KIND_UNSPECIFIED {
		var err error
		if kind, err = kindOf("kind", r.GetKind()); err != nil {
			return nil, err
		}
	}
	if len(r.GetKey()) > maxKeyLen {
		return nil, toStatus(errs.Invalid("key", "longer than %d characters", maxKeyLen))
	}
	size := int(r.GetPageSize())
	switch {
	case size == 0:
		size = defaultPageSize
	case size < 0 || size > maxPageSize:
		return nil, toStatus(errs.Invalid("page_size", "%d is outside 1-%d", size, maxPageSize))
	}
	var after uint64
	if tok := r.GetPageToken(); tok != "" {
		var err error
		if after, err = strconv.ParseUint(tok, 10, 64); err != nil {
			return nil, toStatus(errs.Invalid("page_token", "not a token this service issued"))
		}
	}
	ops, next := s.acq.List(kind, r.GetKey(), after, size)
	resp := &acquirerv1.ListOperationsResponse{Operations: make([]*acquirerv1.Operation, 0, len(ops))}
	for _, op := range ops {
		resp.Operations = append(resp.Operations, operationPB(op))
	}
	if next != 0 {
		resp.NextPageToken = strconv.FormatUint(next, 10)
	}
	return resp, nil
}

func (s *Server) SetFaults(_ context.Context, r *acquirerv1.SetFaultsRequest) (*acquirerv1.SetFaultsResponse, error) {
	f, err := faultsFromPB(r.GetFaults())
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.acq.SetFaults(f); err != nil {
		return nil, toStatus(err)
	}
	return &acquirerv1.SetFaultsResponse{Faults: FaultsPB(s.acq.Faults())}, nil
}

func (s *Server) GetStats(context.Context, *acquirerv1.GetStatsRequest) (*acquirerv1.GetStatsResponse, error) {
	return statsPB(s.acq.Stats()), nil
}

// toStatus is where the acquirer's errors become codes: the runtime's mapping of error kinds, plus
// the NOT_ACTED detail on whatever was refused before anything was decided, and a lost answer made to
// look like a connection dropped after the request was sent.
func toStatus(err error) error {
	if errors.Is(err, acquirer.ErrAnswerLost) {
		return status.Error(codes.Unavailable, err.Error())
	}
	st := status.Convert(server.ToStatus(err))
	if _, ok := errors.AsType[*acquirer.NotActedError](err); ok {
		if withInfo, derr := st.WithDetails(&errdetails.ErrorInfo{Domain: NotActedDomain, Reason: NotActedReason}); derr == nil {
			st = withInfo
		}
	}
	return st.Err()
}
