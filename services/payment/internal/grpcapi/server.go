// Package grpcapi serves bourse.payment.v1.PaymentService: it validates every request field
// (InvalidArgument naming it), checks that the caller owns what the request names (someone else's
// payment is NotFound, so ids do not leak), calls the flows and maps their errors to codes in one
// place (toStatus).
package grpcapi

import (
	"context"
	"encoding/base64"
	"errors"

	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bourse-dev/bourse/pkg/auth"
	"github.com/bourse-dev/bourse/pkg/errs"
	paymentv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/payment/v1"
	"github.com/bourse-dev/bourse/pkg/server"
	"github.com/bourse-dev/bourse/pkg/sqldb"
	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/flows"
	"github.com/bourse-dev/bourse/services/payment/internal/idempotency"
	"github.com/bourse-dev/bourse/services/payment/internal/store"
)

// Policy: customers pay in and out of their own accounts and see their own objects; the ledger is
// for operators. Every method is listed: a missing one is refused to everyone.
var Policy = auth.Policy{
	paymentv1.PaymentService_CreatePayment_FullMethodName:         auth.Accounts,
	paymentv1.PaymentService_GetPayment_FullMethodName:            auth.Accounts,
	paymentv1.PaymentService_ListPayments_FullMethodName:          auth.Accounts,
	paymentv1.PaymentService_CapturePayment_FullMethodName:        auth.Accounts,
	paymentv1.PaymentService_CancelPayment_FullMethodName:         auth.Accounts,
	paymentv1.PaymentService_RefundPayment_FullMethodName:         auth.Accounts,
	paymentv1.PaymentService_GetRefund_FullMethodName:             auth.Accounts,
	paymentv1.PaymentService_CreatePayout_FullMethodName:          auth.Accounts,
	paymentv1.PaymentService_GetPayout_FullMethodName:             auth.Accounts,
	paymentv1.PaymentService_ListEvents_FullMethodName:            auth.Accounts,
	paymentv1.PaymentService_CreateWebhookEndpoint_FullMethodName: auth.Accounts,
	paymentv1.PaymentService_ListWebhookEndpoints_FullMethodName:  auth.Accounts,
	paymentv1.PaymentService_DeleteWebhookEndpoint_FullMethodName: auth.Accounts,
	paymentv1.PaymentService_GetLedgerBalance_FullMethodName:      auth.AdminOnly,
	paymentv1.PaymentService_ListLedgerEntries_FullMethodName:     auth.AdminOnly,
}

// Server implements paymentv1.PaymentServiceServer.
type Server struct {
	paymentv1.UnimplementedPaymentServiceServer
	flows *flows.Service
	st    *store.Store
	// AllowPrivateWebhooks accepts endpoint URLs naming internal hosts (localhost, private and
	// loopback addresses), as the dispatcher's --webhook-allow-private-addresses delivers to them.
	AllowPrivateWebhooks bool
}

// New returns the server over svc.
func New(svc *flows.Service) *Server { return &Server{flows: svc, st: svc.Store()} }

// toStatus is the one place errors become codes: idempotency_key_in_use is Aborted (retryable), a
// transaction the database rolled back to end a conflict (deadlock, serialization) Aborted too, the
// database out of reach Unavailable (retryable: a retry with the same key reads what committed), the
// rest goes through the runtime's kind mapping.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, idempotency.ErrInUse) {
		return status.Error(codes.Aborted, idempotency.ErrInUse.Error())
	}
	if errs.KindOf(err) == errs.KindInternal && sqldb.Unavailable(err) {
		return status.Error(codes.Unavailable, "the payment database is unavailable; retry with the same idempotency key")
	}
	if errs.KindOf(err) == errs.KindInternal && sqldb.RolledBack(err) {
		return status.Error(codes.Aborted, "the payment database rolled back a conflicting transaction; retry with the same idempotency key")
	}
	return server.ToStatus(err)
}

func caller(ctx context.Context) (auth.Identity, error) {
	id, ok := auth.FromContext(ctx)
	if !ok {
		return id, errs.New(errs.KindUnauthenticated, "no caller identity")
	}
	return id, nil
}

// own checks that the caller may act on account (a request naming another account is
// PermissionDenied: account ids are the caller's to know).
func own(ctx context.Context, account string) (auth.Identity, error) {
	id, err := caller(ctx)
	if err != nil {
		return id, err
	}
	return id, auth.RequireAccess(ctx, account)
}

// listAccount is the account a list is about: a customer's own (given or not), or any for an admin.
func listAccount(ctx context.Context, account string) (string, error) {
	id, err := caller(ctx)
	if err != nil {
		return "", err
	}
	if account == "" && id.Role == auth.RoleAccount {
		return id.Subject, nil
	}
	if account != "" {
		if err := validateAccount(account); err != nil {
			return "", err
		}
	}
	return account, auth.RequireAccess(ctx, account)
}

// visible reports whether the caller may see an object of account; one it may not see is NotFound.
func visible(ctx context.Context, what, id, account string) error {
	who, err := caller(ctx)
	if err != nil {
		return err
	}
	if !who.CanAccess(account) {
		return errs.New(errs.KindNotFound, "%s %q not found", what, id)
	}
	return nil
}

func (s *Server) payment(ctx context.Context, id string) (domain.Payment, error) {
	if err := validateID("payment_id", id, "pay_"); err != nil {
		return domain.Payment{}, err
	}
	p, err := s.st.GetPayment(ctx, id)
	if err != nil {
		return p, err
	}
	return p, visible(ctx, "payment", id, p.AccountID)
}

// CreatePayment implements the RPC.
func (s *Server) CreatePayment(ctx context.Context, req *paymentv1.CreatePaymentRequest) (*paymentv1.CreatePaymentResponse, error) {
	// The account first: a caller learns nothing about a request for an account not its own.
	if err := validateAccount(req.GetAccountId()); err != nil {
		return nil, toStatus(err)
	}
	id, err := own(ctx, req.GetAccountId())
	if err != nil {
		return nil, toStatus(err)
	}
	in, err := validateCreatePayment(req)
	if err != nil {
		return nil, toStatus(err)
	}
	p, replayed, err := s.flows.CreatePayment(ctx, id.String(), req.GetIdempotencyKey(), in)
	if err != nil {
		return nil, toStatus(err)
	}
	return &paymentv1.CreatePaymentResponse{Payment: toPayment(p), Replayed: replayed}, nil
}

// GetPayment implements the RPC.
func (s *Server) GetPayment(ctx context.Context, req *paymentv1.GetPaymentRequest) (*paymentv1.GetPaymentResponse, error) {
	p, err := s.payment(ctx, req.GetPaymentId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &paymentv1.GetPaymentResponse{Payment: toPayment(p)}, nil
}

// ListPayments implements the RPC.
func (s *Server) ListPayments(ctx context.Context, req *paymentv1.ListPaymentsRequest) (*paymentv1.ListPaymentsResponse, error) {
	f, err := validateListPayments(req)
	if err != nil {
		return nil, toStatus(err)
	}
	if f.AccountID, err = listAccount(ctx, req.GetAccountId()); err != nil {
		return nil, toStatus(err)
	}
	limit := f.Limit
	f.Limit++
	ps, err := s.st.ListPayments(ctx, f)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &paymentv1.ListPaymentsResponse{}
	if len(ps) > limit {
		ps = ps[:limit]
		last := ps[len(ps)-1]
		out.NextPageToken = pageToken(last.CreatedAt.UnixNano(), last.ID)
	}
	for _, p := range ps {
		out.Payments = append(out.Payments, toPayment(p))
	}
	return out, nil
}

func pageToken(nanos int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(nanos, 10) + "|" + id))
}

// parsePageToken reads a pageToken whose id has prefix (the listed objects' kind).
func parsePageToken(tok, prefix string) (int64, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err == nil {
		if ns, id, ok := strings.Cut(string(b), "|"); ok {
			if n, err := strconv.ParseInt(ns, 10, 64); err == nil && n >= 0 && validateID("page_token", id, prefix) == nil {
				return n, id, nil
			}
		}
	}
	return 0, "", errs.Invalid("page_token", "not a token this service issued")
}

// CapturePayment implements the RPC.
func (s *Server) CapturePayment(ctx context.Context, req *paymentv1.CapturePaymentRequest) (*paymentv1.CapturePaymentResponse, error) {
	if err := domain.ValidateIdempotencyKey(req.GetIdempotencyKey()); err != nil {
		return nil, toStatus(err)
	}
	if req.GetAmountToCapture() != 0 {
		if err := domain.ValidateAmount("amount_to_capture", req.GetAmountToCapture()); err != nil {
			return nil, toStatus(err)
		}
	}
	if _, err := s.payment(ctx, req.GetPaymentId()); err != nil {
		return nil, toStatus(err)
	}
	id, _ := caller(ctx)
	p, replayed, err := s.flows.CapturePayment(ctx, id.String(), req.GetIdempotencyKey(), req.GetPaymentId(), req.GetAmountToCapture())
	if err != nil {
		return nil, toStatus(err)
	}
	return &paymentv1.CapturePaymentResponse{Payment: toPayment(p), Replayed: replayed}, nil
}

// CancelPayment implements the RPC.
func (s *Server) CancelPayment(ctx context.Context, req *paymentv1.CancelPaymentRequest) (*paymentv1.CancelPaymentResponse, error) {
	if err := domain.ValidateIdempotencyKey(req.GetIdempotencyKey()); err != nil {
		return nil, toStatus(err)
	}
	if _, err := s.payment(ctx, req.GetPaymentId()); err != nil {
		return nil, toStatus(err)
	}
	id, _ := caller(ctx)
	p, replayed, err := s.flows.CancelPayment(ctx, id.String(), req.GetIdempotencyKey(), req.GetPaymentId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &paymentv1.CancelPaymentResponse{Payment: toPayment(p), Replayed: replayed}, nil
}

// RefundPayment implements the RPC.
func (s *Server) RefundPayment(ctx context.Context, req *paymentv1.RefundPaymentRequest) (*paymentv1.RefundPaymentResponse, error) {
	if err := domain.ValidateIdempotencyKey(req.GetIdempotencyKey()); err != nil {
		return nil, toStatus(err)
	}
	if req.GetAmount() != 0 {
		if err := domain.ValidateAmount("amount", req.GetAmount()); err != nil {
			return nil, toStatus(err)
		}
	}
	if err := domain.ValidateText("reason", req.GetReason(), false, domain.MaxReason); err != nil {
		return nil, toStatus(err)
	}
	if _, err := s.payment(ctx, req.GetPaymentId()); err != nil {
		return nil, toStatus(err)
	}
	id, _ := caller(ctx)
	r, replayed, err := s.flows.RefundPayment(ctx, id.String(), req.GetIdempotencyKey(), req.GetPaymentId(), req.GetAmount(), req.GetReason())
	if err != nil {
		return nil, toStatus(err)
	}
	p, err := s.st.GetPayment(ctx, r.PaymentID)
	if err != nil {
		return nil, toStatus(err)
	}
	return &paymentv1.RefundPaymentResponse{Refund: toRefund(r), Payment: toPayment(p), Replayed: replayed}, nil
}

// GetRefund implements the RPC.
func (s *Server) GetRefund(ctx context.Context, req *paymentv1.GetRefundRequest) (*paymentv1.GetRefundResponse, error) {
	if err := validateID("refund_id", req.GetRefundId(), "re_"); err != nil {
		return nil, toStatus(err)
	}
	r, err := s.st.GetRefund(ctx, req.GetRefundId())
	if err == nil {
		err = visible(ctx, "refund", r.ID, r.AccountID)
	}
	if err != nil {
		return nil, toStatus(err)
	}
	return &paymentv1.GetRefundResponse{Refund: toRefund(r)}, nil
}

// CreatePayout implements the RPC.
func (s *Server) CreatePayout(ctx context.Context, req *paymentv1.CreatePayoutRequest) (*paymentv1.CreatePayoutResponse, error) {
	// The account first: a caller learns nothing about a request for an account not its own.
	if err := validateAccount(req.GetAccountId()); err != nil {
		return nil, toStatus(err)
	}
	id, err := own(ctx, req.GetAccountId())
	if err != nil {
		return nil, toStatus(err)
	}
	in, err := validateCreatePayout(req)
	if err != nil {
		return nil, toStatus(err)
	}
	x, replayed, err := s.flows.CreatePayout(ctx, id.String(), req.GetIdempotencyKey(), in)
	if err != nil {
		return nil, toStatus(err)
	}
	return &paymentv1.CreatePayoutResponse{Payout: toPayout(x), Replayed: replayed}, nil
}

// GetPayout implements the RPC.
func (s *Server) GetPayout(ctx context.Context, req *paymentv1.GetPayoutRequest) (*paymentv1.GetPayoutResponse, error) {
	if err := validateID("payout_id", req.GetPayoutId(), "po_"); err != nil {
		return nil, toStatus(err)
	}
	x, err := s.st.GetPayout(ctx, req.GetPayoutId())
	if err == nil {
		err = visible(ctx, "payout", x.ID, x.AccountID)
	}
	if err != nil {
		return nil, toStatus(err)
	}
	return &paymentv1.GetPayoutResponse{Payout: toPayout(x)}, nil
}

// ListEvents implements the RPC.
func (s *Server) ListEvents(ctx context.Context, req *paymentv1.ListEventsRequest) (*paymentv1.ListEventsResponse, error) {
	size, err := pageSize("page_size", req.GetPageSize(), 100, 500)
	if err != nil {
		return nil, toStatus(err)
	}
	if req.GetAfterSequence() < 0 {
		return nil, toStatus(errs.Invalid("after_sequence", "must not be negative"))
	}
	if err := domain.ValidateText("type", req.GetType(), false, 64); err != nil {
		return nil, toStatus(err)
	}
	account, err := listAccount(ctx, req.GetAccountId())
	if err != nil {
		return nil, toStatus(err)
	}
	evs, err := s.st.ListEvents(ctx, account, req.GetType(), req.GetAfterSequence(), size+1)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &paymentv1.ListEventsResponse{HasMore: len(evs) > size}
	for i, e := range evs {
		if i == size {
			break
		}
		out.Events = append(out.Events, &paymentv1.Event{EventId: e.ID, Sequence: e.Seq, Type: e.Type, AccountId: e.AccountID,
			ObjectId: e.ObjectID, DataJson: string(e.Data), CreatedAt: ts(e.CreatedAt)})
	}
	return out, nil
}
