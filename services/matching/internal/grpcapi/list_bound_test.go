package grpcapi

import (
	"context"
	"fmt"
	"strings"
	"testing"

	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
	"github.com/bourse-dev/bourse/services/matching/internal/exchange"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A token naming another account's order, in front of a run of that account's ids longer than one
// page may probe, answers a page cut short: no orders, a next_page_token further on. Following the
// tokens lists alice's later orders once. A token past the symbol's last id is refused on page_token.
func TestListOrdersCutPages(t *testing.T) {
	ts := startServer(t, nil)
	mc := ts.dial(t)
	ctx := context.Background()
	submit := func(account, cid string, side matchingv1.Side, price string) uint64 {
		t.Helper()
		resp, err := mc.SubmitOrder(ctx, limitOrder(account, cid, side, price))
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetOrder().GetOrderId()
	}
	submit("alice", "a0", matchingv1.Side_SIDE_BUY, "50.00")
	var bobFirst, last uint64
	for i := range 1100 {
		id := submit("bob", fmt.Sprintf("b%d", i), matchingv1.Side_SIDE_SELL, "300.00")
		if i == 0 {
			bobFirst = id
		}
	}
	var want []uint64
	for i := range 3 {
		last = submit("alice", fmt.Sprintf("a%d", i+1), matchingv1.Side_SIDE_BUY, "51.00")
		want = append(want, last)
	}

	req := &matchingv1.ListOrdersRequest{AccountId: "alice", Symbol: "BTC-USD", PageSize: 1,
		PageToken: encodePageToken(exchange.ListCursor{Symbol: "BTC-USD", OrderID: bobFirst})}
	var got []uint64
	empty := 0
	for calls := 0; ; calls++ {
		if calls > 10 {
			t.Fatalf("still paging after %d calls", calls)
		}
		resp, err := mc.ListOrders(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range resp.GetOrders() {
			got = append(got, o.GetOrderId())
		}
		next := resp.GetNextPageToken()
		if next == "" {
			break
		}
		if len(resp.GetOrders()) == 0 {
			empty++
		}
		if next == req.GetPageToken() {
			t.Fatalf("the same token answered twice: %q", next)
		}
		req.PageToken = next
	}
	if empty == 0 {
		t.Fatal("no page was cut short through 1100 ids of bob's")
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("listed %v, want %v", got, want)
	}

	_, err := mc.ListOrders(ctx, &matchingv1.ListOrdersRequest{AccountId: "alice", Symbol: "BTC-USD",
		PageToken: encodePageToken(exchange.ListCursor{Symbol: "BTC-USD", OrderID: last + 1})})
	if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "page_token") {
		t.Fatalf("a token past the last id: %v, want InvalidArgument naming page_token", err)
	}
}
