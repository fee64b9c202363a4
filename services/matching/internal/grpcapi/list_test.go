package grpcapi

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bourse-dev/bourse/pkg/auth"
	"github.com/bourse-dev/bourse/pkg/errs"
	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
	"github.com/bourse-dev/bourse/pkg/server"
	"github.com/bourse-dev/bourse/services/matching/internal/exchange"
)

// listServer has alice's open orders in two symbols, with cancelled and filled ones in between and
// bob's orders beside them. want is alice's open orders by (symbol, id), from the command answers.
func listServer(t *testing.T, perSymbol int) (*testServer, matchingv1.MatchingServiceClient, []*matchingv1.Order) {
	t.Helper()
	ts := startServer(t, nil)
	if _, err := ts.x.AddSymbol(context.Background(), exchange.SpecInput{Symbol: "ETH-USD", TickSize: "0.01", LotSize: "0.001"}); err != nil {
		t.Fatal(err)
	}
	mc := ts.dial(t)
	ctx := context.Background()
	var want []*matchingv1.Order
	// ETH first: the listing is by symbol, not by when orders were placed.
	for _, sym := range []string{"ETH-USD", "BTC-USD"} {
		for i := range perSymbol {
			req := limitOrder("alice", fmt.Sprintf("%s-%d", sym, i), matchingv1.Side_SIDE_BUY, fmt.Sprintf("%d.00", 50+i%40))
			req.Symbol = sym
			resp, err := mc.SubmitOrder(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			o := resp.GetOrder()
			if i%5 == 3 {
				if _, err := mc.CancelOrder(ctx, &matchingv1.CancelOrderRequest{AccountId: "alice", Symbol: sym, OrderId: o.GetOrderId()}); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want = append(want, o)
			if i%7 == 0 {
				bob := limitOrder("bob", fmt.Sprintf("%s-%d", sym, i), matchingv1.Side_SIDE_SELL, fmt.Sprintf("%d.00", 300+i))
				bob.Symbol = sym
				if _, err := mc.SubmitOrder(ctx, bob); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	// A sell that fills alice's highest BTC bid: it closes and leaves the listing.
	hit := limitOrder("bob", "hit", matchingv1.Side_SIDE_SELL, "1.00")
	resp, err := mc.SubmitOrder(ctx, hit)
	if err != nil || resp.GetOrder().GetStatus() != matchingv1.OrderStatus_ORDER_STATUS_FILLED || len(resp.GetFills()) != 1 {
		t.Fatalf("bob's sell: %v %v", resp, err)
	}
	filled := resp.GetFills()[0].GetPrice()
	i := slices.IndexFunc(want, func(o *matchingv1.Order) bool { return o.GetSymbol() == "BTC-USD" && o.GetPrice() == filled })
	if i < 0 {
		t.Fatalf("bob's sell filled at %s, which none of alice's open bids has", filled)
	}
	want = slices.Delete(want, i, i+1)
	slices.SortFunc(want, func(a, b *matchingv1.Order) int {
		if c := strings.Compare(a.GetSymbol(), b.GetSymbol()); c != 0 {
			return c
		}
		return cmp.Compare(a.GetOrderId(), b.GetOrderId())
	})
	return ts, mc, want
}

func listPages(t *testing.T, mc matchingv1.MatchingServiceClient, req *matchingv1.ListOrdersRequest) (all []*matchingv1.Order, pages int) {
	t.Helper()
	size := int(req.GetPageSize())
	if size == 0 {
		size = 100
	}
	for {
		resp, err := mc.ListOrders(context.Background(), req)
		if err != nil {
			t.Fatalf("list %v: %v", req, err)
		}
		pages++
		if resp.GetNextPageToken() != "" && len(resp.GetOrders()) != size || len(resp.GetOrders()) > size {
			t.Fatalf("page %d holds %d orders, page size %d, next token %q", pages, len(resp.GetOrders()), size, resp.GetNextPageToken())
		}
		all = append(all, resp.GetOrders()...)
		if resp.GetNextPageToken() == "" {
			return all, pages
		}
		if pages > 1000 {
			t.Fatal("paging does not end")
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

func checkListing(t *testing.T, what string, got, want []*matchingv1.Order) {
	t.Helper()
	key := func(o *matchingv1.Order) string { return fmt.Sprintf("%s/%d", o.GetSymbol(), o.GetOrderId()) }
	if len(got) != len(want) {
		t.Fatalf("%s: %d orders, want %d", what, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if key(g) != key(w) || g.GetClientOrderId() != w.GetClientOrderId() || g.GetPrice() != w.GetPrice() ||
			g.GetRemainingQuantity() != w.GetRemainingQuantity() || g.GetStatus() != matchingv1.OrderStatus_ORDER_STATUS_NEW ||
			g.GetFilledNotional() != "0" || g.GetAccountId() != "alice" {
			t.Fatalf("%s: order %d is %v, want %v", what, i, g, w)
		}
	}
}

func TestListOrdersPaging(t *testing.T) {
	_, mc, want := listServer(t, 60)
	if len(want) < 90 {
		t.Fatalf("only %d open orders", len(want))
	}
	for _, size := range []uint32{1, 7, 47, uint32(len(want)), 1000} {
		got, pages := listPages(t, mc, &matchingv1.ListOrdersRequest{AccountId: "alice", PageSize: size})
		checkListing(t, fmt.Sprintf("page size %d", size), got, want)
		if n := (len(want) + int(size) - 1) / int(size); pages != n {
			t.Errorf("page size %d: %d pages, want %d", size, pages, n)
		}
	}
	var btc []*matchingv1.Order
	for _, o := range want {
		if o.GetSymbol() == "BTC-USD" {
			btc = append(btc, o)
		}
	}
	got, _ := listPages(t, mc, &matchingv1.ListOrdersRequest{AccountId: "alice", Symbol: "BTC-USD", PageSize: 5})
	checkListing(t, "BTC-USD only", got, btc)

	// page_size 0 means 100.
	resp, err := mc.ListOrders(context.Background(), &matchingv1.ListOrdersRequest{AccountId: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if n := min(100, len(want)); len(resp.GetOrders()) != n || (len(want) > 100) != (resp.GetNextPageToken() != "") {
		t.Errorf("default page: %d orders, next %q; want %d of %d", len(resp.GetOrders()), resp.GetNextPageToken(), n, len(want))
	}
}

func TestListOrdersRefusesBadInput(t *testing.T) {
	_, mc, _ := listServer(t, 3)
	ctx := context.Background()
	first, err := mc.ListOrders(ctx, &matchingv1.ListOrdersRequest{AccountId: "alice", PageSize: 1})
	if err != nil || first.GetNextPageToken() == "" {
		t.Fatalf("first page: %v, %v", first, err)
	}
	tok := first.GetNextPageToken() // a position in BTC-USD, which sorts first
	for _, c := range []struct {
		name  string
		req   *matchingv1.ListOrdersRequest
		code  codes.Code
		field string
	}{
		{"no account", &matchingv1.ListOrdersRequest{}, codes.InvalidArgument, "account_id"},
		{"page too large", &matchingv1.ListOrdersRequest{AccountId: "alice", PageSize: 1001}, codes.InvalidArgument, "page_size"},
		{"not base64", &matchingv1.ListOrdersRequest{AccountId: "alice", PageToken: "***"}, codes.InvalidArgument, "page_token"},
		{"unknown version", &matchingv1.ListOrdersRequest{AccountId: "alice", PageToken: base64.RawURLEncoding.EncodeToString([]byte{9, 1, 'A'})}, codes.InvalidArgument, "page_token"},
		{"order id 0", &matchingv1.ListOrdersRequest{AccountId: "alice", PageToken: base64.RawURLEncoding.EncodeToString([]byte{1, 0, 'A'})}, codes.InvalidArgument, "page_token"},
		{"no symbol", &matchingv1.ListOrdersRequest{AccountId: "alice", PageToken: base64.RawURLEncoding.EncodeToString([]byte{1, 5})}, codes.InvalidArgument, "page_token"},
		{"bad symbol", &matchingv1.ListOrdersRequest{AccountId: "alice", PageToken: base64.RawURLEncoding.EncodeToString([]byte{1, 5, 'a', 0})}, codes.InvalidArgument, "page_token"},
		{"too long", &matchingv1.ListOrdersRequest{AccountId: "alice", PageToken: strings.Repeat("A", 65)}, codes.InvalidArgument, "page_token"},
		{"token of another symbol", &matchingv1.ListOrdersRequest{AccountId: "alice", Symbol: "ETH-USD", PageToken: tok}, codes.InvalidArgument, "page_token"},
		{"unknown symbol", &matchingv1.ListOrdersRequest{AccountId: "alice", Symbol: "NOPE"}, codes.NotFound, "symbol"},
	} {
		_, err := mc.ListOrders(ctx, c.req)
		if st, _ := status.FromError(err); st.Code() != c.code || !strings.Contains(st.Message(), c.field) {
			t.Errorf("%s: %v, want %v naming %s", c.name, err, c.code, c.field)
		}
	}
	// The largest page is allowed.
	if _, err := mc.ListOrders(ctx, &matchingv1.ListOrdersRequest{AccountId: "alice", PageSize: 1000}); err != nil {
		t.Errorf("page size 1000: %v", err)
	}
	// A token keeps working with the filter it was issued under.
	resp, err := mc.ListOrders(ctx, &matchingv1.ListOrdersRequest{AccountId: "alice", Symbol: first.GetOrders()[0].GetSymbol(), PageToken: tok})
	if err != nil || len(resp.GetOrders()) == 0 {
		t.Errorf("token with its own symbol: %v, %v", resp, err)
	}
}

// An account key may list only its own account, refused the same way GetOrder refuses another
// account's order; admin lists anyone's.
func TestListOrdersAccess(t *testing.T) {
	ts, _, want := listServer(t, 3)
	asAlice := auth.WithIdentity(context.Background(), auth.Account("alice"))
	_, listErr := ts.srv.ListOrders(asAlice, &matchingv1.ListOrdersRequest{AccountId: "bob"})
	_, getErr := ts.srv.GetOrder(asAlice, &matchingv1.GetOrderRequest{AccountId: "bob", Symbol: "BTC-USD", OrderId: 1})
	if errs.KindOf(listErr) != errs.KindPermissionDenied || errs.KindOf(listErr) != errs.KindOf(getErr) {
		t.Errorf("alice listing bob: %v; GetOrder of bob's order: %v", listErr, getErr)
	}
	if st, _ := status.FromError(server.ToStatus(listErr)); st.Code() != codes.PermissionDenied || strings.Contains(st.Message(), "bob") {
		t.Errorf("refusal %v: want PermissionDenied naming no account", st)
	}
	if _, err := ts.srv.ListOrders(context.Background(), &matchingv1.ListOrdersRequest{AccountId: "alice"}); errs.KindOf(err) != errs.KindUnauthenticated {
		t.Errorf("no identity: %v", err)
	}
	own, err := ts.srv.ListOrders(asAlice, &matchingv1.ListOrdersRequest{AccountId: "alice"})
	if err != nil || len(own.GetOrders()) != len(want) {
		t.Fatalf("alice listing her own: %d orders, %v; want %d", len(own.GetOrders()), err, len(want))
	}
	asAdmin := auth.WithIdentity(context.Background(), auth.Admin("ops"))
	bobs, err := ts.srv.ListOrders(asAdmin, &matchingv1.ListOrdersRequest{AccountId: "bob"})
	if err != nil || len(bobs.GetOrders()) == 0 {
		t.Fatalf("admin listing bob: %v, %v", bobs, err)
	}
	for _, o := range bobs.GetOrders() {
		if o.GetAccountId() != "bob" {
			t.Errorf("bob's listing holds %v", o)
		}
	}
}
