package grpcapi

import (
	"context"
	"encoding/base64"
	"encoding/binary"

	"github.com/bourse-dev/bourse/pkg/auth"
	"github.com/bourse-dev/bourse/pkg/errs"
	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
	"github.com/bourse-dev/bourse/services/matching/internal/exchange"
)

const defaultListPage = 100

func (s *Server) ListOrders(ctx context.Context, req *matchingv1.ListOrdersRequest) (*matchingv1.ListOrdersResponse, error) {
	if req.GetAccountId() == "" {
		return nil, errs.Invalid("account_id", "is required")
	}
	if err := auth.RequireAccess(ctx, req.GetAccountId()); err != nil {
		return nil, err
	}
	limit := defaultListPage
	switch n := req.GetPageSize(); {
	case n > exchange.MaxListPage:
		return nil, errs.Invalid("page_size", "at most %d", exchange.MaxListPage)
	case n > 0:
		limit = int(n)
	}
	after, err := decodePageToken(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	page, err := s.x.ListOrders(ctx, exchange.ListQuery{Account: req.GetAccountId(), Symbol: req.GetSymbol(), After: after, Limit: limit})
	if err != nil {
		return nil, err
	}
	resp := &matchingv1.ListOrdersResponse{Orders: make([]*matchingv1.Order, 0, len(page.Orders))}
	for i := range page.Orders {
		o := &page.Orders[i]
		spec, err := s.x.Spec(o.Symbol)
		if err != nil {
			return nil, err // unreachable: symbols are never removed
		}
		resp.Orders = append(resp.Orders, orderToProto(spec, o))
	}
	if page.More {
		// Not always the last listed order: a page cut short ends where its walk stopped.
		resp.NextPageToken = encodePageToken(page.Next)
	}
	return resp, nil
}

// A page token is a position in the listing (the last listed order's, or where a page cut short
// stopped): a version byte, the order id as a uvarint and the symbol, in unpadded URL-safe base64.
// It is not signed: any well-formed position is accepted (the exchange bounds what one costs, and
// refuses an id its symbol has not issued), and it reveals at most an order id.
const pageTokenV1 = 1

// maxPageToken bounds what is decoded: a 32-character symbol and a 10-byte id fit well within it.
const maxPageToken = 64

func encodePageToken(c exchange.ListCursor) string {
	b := binary.AppendUvarint([]byte{pageTokenV1}, c.OrderID)
	return base64.RawURLEncoding.EncodeToString(append(b, c.Symbol...))
}

func decodePageToken(tok string) (exchange.ListCursor, error) {
	if tok == "" {
		return exchange.ListCursor{}, nil
	}
	bad := errs.Invalid("page_token", "is not a page token of this service")
	if len(tok) > maxPageToken {
		return exchange.ListCursor{}, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) < 1 || b[0] != pageTokenV1 {
		return exchange.ListCursor{}, bad
	}
	id, n := binary.Uvarint(b[1:])
	if n <= 0 || id == 0 {
		return exchange.ListCursor{}, bad
	}
	c := exchange.ListCursor{Symbol: string(b[1+n:]), OrderID: id}
	// Only the exact text issued: base64 decoding skips newlines and a varint may be padded.
	if !plausibleSymbol(c.Symbol) || encodePageToken(c) != tok {
		return exchange.ListCursor{}, bad
	}
	return c, nil
}

// plausibleSymbol accepts what AddSymbol accepts as a name; the exchange needs no such symbol to
// exist (one past the last listed is a valid position).
func plausibleSymbol(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}
