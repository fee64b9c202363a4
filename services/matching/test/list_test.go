package matching_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"syscall"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
)

// ListOrders against the real binaries: alice's open orders in three symbols over two shards page
// out exactly (cancelled and filled ones left out), the same after matching is killed and
// restarted, and bob's key cannot list them.
func TestListOrdersAcrossShardsAndRestart(t *testing.T) {
	p := startPlatform(t)
	ctx := context.Background()
	symbols := []string{"BTC-USD", "ETH-USD", "SOL-USD"}
	for _, base := range []string{"ETH", "SOL"} {
		must(t)(p.risk.DefineAsset(ctx, &riskv1.DefineAssetRequest{Asset: &riskv1.Asset{AssetId: base, Scale: 8}}))
		must(t)(p.risk.DefineSymbol(ctx, &riskv1.DefineSymbolRequest{Symbol: &riskv1.Symbol{
			Symbol: base + "-USD", BaseAsset: base, QuoteAsset: "USD", PriceScale: 2, QtyScale: 4, TakerFeeRate: "0.001"}}))
	}
	for _, s := range symbols {
		must(t)(p.admin.AddSymbol(ctx, &matchingv1.AddSymbolRequest{Symbol: &matchingv1.Symbol{
			Symbol: s, TickSize: "0.5", LotSize: "0.001", MinQuantity: "0.001", MaxQuantity: "100"}}))
	}
	// New symbols go to the shard with the fewest: BTC and SOL on one, ETH on the other.
	st, err := p.admin.GetSettlementStatus(ctx, &matchingv1.GetSettlementStatusRequest{})
	if err != nil || len(st.GetShards()) != 2 {
		t.Fatalf("settlement status: %v, %v", st, err)
	}

	// Placed in reverse symbol order: the listing sorts by symbol, then id.
	var want []*matchingv1.Order
	for i, s := range []string{"SOL-USD", "ETH-USD", "BTC-USD"} {
		for j := range 7 + 2*i {
			req := limitOrder("alice", fmt.Sprintf("%s-%d", s, j), buy, fmt.Sprintf("%d", 100+j), "0.01")
			req.Symbol = s
			o := must(t)(p.alice.SubmitOrder(ctx, req)).(*matchingv1.SubmitOrderResponse).GetOrder()
			if j%3 == 1 {
				must(t)(p.alice.CancelOrder(ctx, &matchingv1.CancelOrderRequest{AccountId: "alice", Symbol: s, OrderId: o.GetOrderId()}))
				continue
			}
			want = append(want, o)
		}
	}
	// Bob's sell fills alice's best BTC bid, which leaves the listing.
	hit := must(t)(p.bob.SubmitOrder(ctx, limitOrder("bob", "hit", sell, "1", "0.01"))).(*matchingv1.SubmitOrderResponse)
	if hit.GetOrder().GetStatus() != matchingv1.OrderStatus_ORDER_STATUS_FILLED || len(hit.GetFills()) != 1 {
		t.Fatalf("bob's sell: %v", hit)
	}
	// The fill is bob's; it traded at the price of alice's order, the only one at that price.
	at := hit.GetFills()[0].GetPrice()
	n := len(want)
	want = slices.DeleteFunc(want, func(o *matchingv1.Order) bool { return o.GetSymbol() == "BTC-USD" && o.GetPrice() == at })
	if len(want) != n-1 {
		t.Fatalf("bob's sell traded at %s: %d of alice's open orders there", at, n-len(want))
	}
	slices.SortFunc(want, func(a, b *matchingv1.Order) int {
		return cmp.Or(cmp.Compare(a.GetSymbol(), b.GetSymbol()), cmp.Compare(a.GetOrderId(), b.GetOrderId()))
	})

	check := func(what string, mc matchingv1.MatchingServiceClient) {
		t.Helper()
		for _, size := range []uint32{1, 4, 100} {
			var got []string
			req := &matchingv1.ListOrdersRequest{AccountId: "alice", PageSize: size}
			for pages := 1; ; pages++ {
				resp, err := mc.ListOrders(ctx, req)
				if err != nil {
					t.Fatalf("%s: page %d of %d: %v", what, pages, size, err)
				}
				if resp.GetNextPageToken() != "" && len(resp.GetOrders()) != int(size) {
					t.Fatalf("%s: page %d holds %d, page size %d", what, pages, len(resp.GetOrders()), size)
				}
				for _, o := range resp.GetOrders() {
					got = append(got, fmt.Sprintf("%s/%d/%s", o.GetSymbol(), o.GetOrderId(), o.GetClientOrderId()))
				}
				if resp.GetNextPageToken() == "" || pages > len(want)+1 {
					break
				}
				req.PageToken = resp.GetNextPageToken()
			}
			var exp []string
			for _, o := range want {
				exp = append(exp, fmt.Sprintf("%s/%d/%s", o.GetSymbol(), o.GetOrderId(), o.GetClientOrderId()))
			}
			if !slices.Equal(got, exp) {
				t.Fatalf("%s, pages of %d:\ngot  %v\nwant %v", what, size, got, exp)
			}
		}
	}
	check("live", p.alice)
	_, err = p.bob.ListOrders(ctx, &matchingv1.ListOrdersRequest{AccountId: "alice"})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("bob's key listing alice: %v", err)
	}

	p.stopMatching(t, syscall.SIGKILL)
	p.startMatching(t)
	check("after SIGKILL and restart", p.admin)
}
