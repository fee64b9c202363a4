package risk_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// Settle and SyncReservations refuse bad input with InvalidArgument naming the field, and a refused
// part changes nothing: the stream's watermark and every balance stay where they were.
func TestSettleBadInputNamesTheFieldAndChangesNothing(t *testing.T) {
	agent := testenv.StartConsul(t)
	p := startRisk(t, agent, "--data-dir="+filepath.Join(t.TempDir(), "risk"))
	setup(t, p)
	ctx := context.Background()
	must[*riskv1.CreditResponse](t)(p.admin.Credit(ctx, &riskv1.CreditRequest{AccountId: "alice", AssetId: "USD", Amount: "100000", Ref: "d"}))
	must[*riskv1.CreditResponse](t)(p.admin.Credit(ctx, &riskv1.CreditRequest{AccountId: "bob", AssetId: "BTC", Amount: "10", Ref: "d"}))
	stream := &riskv1.SettlementStream{Owner: "matching", Shard: 0, Epoch: 7}
	good := func() *riskv1.SettleRequest {
		return &riskv1.SettleRequest{Stream: proto.Clone(stream).(*riskv1.SettlementStream), Through: 1, Items: []*riskv1.SettlementItem{{Seq: 1,
			Item: &riskv1.SettlementItem_Trade{Trade: &riskv1.Trade{Symbol: "BTC-USD", Price: "50000", Quantity: "1", TakerSide: riskv1.Side_SIDE_BUY,
				Buyer: &riskv1.SettlementLeg{AccountId: "alice"}, Seller: &riskv1.SettlementLeg{AccountId: "bob"}, Time: timestamppb.Now()}}}}}
	}
	trade := func(r *riskv1.SettleRequest) *riskv1.Trade { return r.Items[0].GetTrade() }
	before := must[*riskv1.AuditResponse](t)(p.admin.Audit(ctx, &riskv1.AuditRequest{}))
	for _, c := range []struct {
		name  string
		edit  func(*riskv1.SettleRequest)
		field string
	}{
		{"no stream", func(r *riskv1.SettleRequest) { r.Stream = nil }, "stream"},
		{"no owner", func(r *riskv1.SettleRequest) { r.Stream.Owner = "" }, "stream.owner"},
		{"no epoch", func(r *riskv1.SettleRequest) { r.Stream.Epoch = 0 }, "stream.epoch"},
		{"bad price", func(r *riskv1.SettleRequest) { trade(r).Price = "abc" }, "items[0].trade.price"},
		{"price finer than the tick", func(r *riskv1.SettleRequest) { trade(r).Price = "50000.001" }, "items[0].trade.price"},
		{"zero quantity", func(r *riskv1.SettleRequest) { trade(r).Quantity = "0" }, "items[0].trade.quantity"},
		{"no buyer", func(r *riskv1.SettleRequest) { trade(r).Buyer = nil }, "items[0].trade.buyer.account_id"},
		{"no time", func(r *riskv1.SettleRequest) { trade(r).Time = nil }, "items[0].trade.time"},
		{"empty item", func(r *riskv1.SettleRequest) { r.Items[0].Item = nil }, "items[0].item"},
		{"zero release", func(r *riskv1.SettleRequest) {
			r.Items = append(r.Items, &riskv1.SettlementItem{Seq: 1, Item: &riskv1.SettlementItem_Release{Release: 0}})
		}, "items[1].release"},
	} {
		req := good()
		c.edit(req)
		_, err := p.matching.Settle(ctx, req)
		st := status.Convert(err)
		if st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), c.field) {
			t.Errorf("Settle with %s: %v %q, want InvalidArgument naming %q", c.name, st.Code(), st.Message(), c.field)
		}
	}
	_, err := p.matching.SyncReservations(ctx, &riskv1.SyncReservationsRequest{Stream: proto.Clone(stream).(*riskv1.SettlementStream), Final: true,
		Reservations: []*riskv1.Reservation{{ReservationId: 5, AccountId: "alice", Symbol: "BTC-USD", Side: riskv1.Side_SIDE_BUY, Price: "-1", Quantity: "1"}}})
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), "reservations[0].price") {
		t.Errorf("SyncReservations with a negative price: %v %q, want InvalidArgument naming reservations[0].price", st.Code(), st.Message())
	}
	after := must[*riskv1.AuditResponse](t)(p.admin.Audit(ctx, &riskv1.AuditRequest{}))
	if !proto.Equal(before, after) {
		t.Fatalf("refused calls changed risk's state:\nbefore %v\nafter  %v", before, after)
	}
	// The same part, valid, is applied: the refusals above were about the fields, not the stream.
	if resp, err := p.matching.Settle(ctx, good()); err != nil || resp.GetApplied() != 1 || resp.GetWatermark() != 1 {
		t.Fatalf("the valid part: %v %v, want 1 item applied and watermark 1", resp, err)
	}
}
