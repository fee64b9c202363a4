package grpcapi

import (
	"context"

	"github.com/bourse-dev/bourse/pkg/errs"
	paymentv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/payment/v1"
	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/ledger"
	"github.com/bourse-dev/bourse/services/payment/internal/store"
)

// Webhook endpoints and the operators' ledger views.

// CreateWebhookEndpoint implements the RPC.
func (s *Server) CreateWebhookEndpoint(ctx context.Context, req *paymentv1.CreateWebhookEndpointRequest) (*paymentv1.CreateWebhookEndpointResponse, error) {
	// The account first: a caller learns nothing about a request for an account not its own.
	if err := validateAccount(req.GetAccountId()); err != nil {
		return nil, toStatus(err)
	}
	id, err := own(ctx, req.GetAccountId())
	if err != nil {
		return nil, toStatus(err)
	}
	in, err := validateEndpoint(req, s.AllowPrivateWebhooks)
	if err != nil {
		return nil, toStatus(err)
	}
	e, replayed, err := s.flows.CreateWebhookEndpoint(ctx, id.String(), req.GetIdempotencyKey(), in)
	if err != nil {
		return nil, toStatus(err)
	}
	return &paymentv1.CreateWebhookEndpointResponse{Endpoint: toEndpoint(e), Secret: e.Secret, Replayed: replayed}, nil
}

// ListWebhookEndpoints implements the RPC.
func (s *Server) ListWebhookEndpoints(ctx context.Context, req *paymentv1.ListWebhookEndpointsRequest) (*paymentv1.ListWebhookEndpointsResponse, error) {
	account, err := listAccount(ctx, req.GetAccountId())
	if err != nil {
		return nil, toStatus(err)
	}
	size, err := pageSize("page_size", req.GetPageSize(), 100, 100)
	if err != nil {
		return nil, toStatus(err)
	}
	pg := store.EndpointsPage{Account: account, Limit: size + 1}
	if tok := req.GetPageToken(); tok != "" {
		if pg.AfterNanos, pg.AfterID, err = parsePageToken(tok, "we_"); err != nil {
			return nil, toStatus(err)
		}
	}
	es, err := s.st.Endpoints(ctx, pg)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &paymentv1.ListWebhookEndpointsResponse{}
	if len(es) > size {
		es = es[:size]
		last := es[len(es)-1]
		out.NextPageToken = pageToken(last.CreatedAt.UnixNano(), last.ID)
	}
	for _, e := range es {
		out.Endpoints = append(out.Endpoints, toEndpoint(e))
	}
	return out, nil
}

// DeleteWebhookEndpoint implements the RPC.
func (s *Server) DeleteWebhookEndpoint(ctx context.Context, req *paymentv1.DeleteWebhookEndpointRequest) (*paymentv1.DeleteWebhookEndpointResponse, error) {
	if err := validateID("endpoint_id", req.GetEndpointId(), "we_"); err != nil {
		return nil, toStatus(err)
	}
	e, err := s.st.Endpoint(ctx, req.GetEndpointId())
	if err == nil {
		err = visible(ctx, "webhook endpoint", e.ID, e.AccountID)
	}
	if err == nil {
		err = s.st.DeleteEndpoint(ctx, e.ID)
	}
	if err != nil {
		return nil, toStatus(err)
	}
	return &paymentv1.DeleteWebhookEndpointResponse{}, nil
}

// GetLedgerBalance implements the RPC.
func (s *Server) GetLedgerBalance(ctx context.Context, req *paymentv1.GetLedgerBalanceRequest) (*paymentv1.GetLedgerBalanceResponse, error) {
	if err := domain.ValidateText("ledger_account", req.GetLedgerAccount(), false, 128); err != nil {
		return nil, toStatus(err)
	}
	if c := req.GetCurrency(); c != "" {
		if _, ok := domain.Exponent(c); !ok {
			return nil, toStatus(errs.Invalid("currency", "%q is not a supported ISO-4217 currency", c))
		}
	}
	bs, err := s.st.Balances(ctx, req.GetLedgerAccount(), req.GetCurrency())
	if err != nil {
		return nil, toStatus(err)
	}
	totals, _ := ledger.CheckBalances(bs)
	out := &paymentv1.GetLedgerBalanceResponse{}
	for _, b := range bs {
		out.Balances = append(out.Balances, &paymentv1.LedgerBalance{LedgerAccount: b.Account, Currency: b.Currency, Balance: b.Amount})
	}
	if req.GetLedgerAccount() == "" {
		for _, t := range totals {
			out.Totals = append(out.Totals, money(t))
		}
	}
	return out, nil
}

// ListLedgerEntries implements the RPC.
func (s *Server) ListLedgerEntries(ctx context.Context, req *paymentv1.ListLedgerEntriesRequest) (*paymentv1.ListLedgerEntriesResponse, error) {
	size, err := pageSize("page_size", req.GetPageSize(), 100, 500)
	if err != nil {
		return nil, toStatus(err)
	}
	if req.GetAfterTransactionId() < 0 {
		return nil, toStatus(errs.Invalid("after_transaction_id", "must not be negative"))
	}
	if err := domain.ValidateText("reference", req.GetReference(), false, domain.MaxID); err != nil {
		return nil, toStatus(err)
	}
	txs, err := s.st.LedgerTransactions(ctx, req.GetReference(), req.GetAfterTransactionId(), size+1)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &paymentv1.ListLedgerEntriesResponse{HasMore: len(txs) > size}
	for i, t := range txs {
		if i == size {
			break
		}
		lt := &paymentv1.LedgerTransaction{TransactionId: t.ID, Kind: t.Kind, Reference: t.Ref, CreatedAt: ts(fromNanos(t.CreatedAt))}
		for _, e := range t.Entries {
			lt.Entries = append(lt.Entries, &paymentv1.LedgerEntry{LedgerAccount: e.Account, Currency: e.Currency, Amount: e.Amount})
		}
		out.Transactions = append(out.Transactions, lt)
	}
	return out, nil
}
