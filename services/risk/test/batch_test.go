package risk_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// CheckOrders answers item by item; ReleaseReservations counts what was no longer open.
func TestBatchCheckAndRelease(t *testing.T) {
	agent := testenv.StartConsul(t)
	p := startRisk(t, agent, "--data-dir="+filepath.Join(t.TempDir(), "risk"))
	setup(t, p)
	ctx := context.Background()
	must[*riskv1.CreditResponse](t)(p.admin.Credit(ctx, &riskv1.CreditRequest{AccountId: "alice", AssetId: "USD", Amount: "1000", Ref: "d"}))

	order := func(price, qty string) *riskv1.CheckOrderRequest {
		return &riskv1.CheckOrderRequest{AccountId: "alice", Symbol: "BTC-USD", Side: riskv1.Side_SIDE_BUY,
			Type: riskv1.OrderType_ORDER_TYPE_LIMIT, Price: price, Quantity: qty}
	}
	resp := must[*riskv1.CheckOrdersResponse](t)(p.matching.CheckOrders(ctx, &riskv1.CheckOrdersRequest{Orders: []*riskv1.CheckOrderRequest{
		order("100", "1"), order("100.001", "1"), order("100", "1000"),
	}}))
	r := resp.GetResults()
	if len(r) != 3 || !r[0].GetAccepted() || r[0].GetReservationId() == 0 {
		t.Fatalf("first order: %v", r)
	}
	if r[1].GetAccepted() || r[1].GetRejectReason() != riskv1.RejectReason_REJECT_REASON_INVALID_PRICE || !strings.Contains(r[1].GetError(), "orders[1].price") {
		t.Fatalf("malformed price: %v", r[1])
	}
	if r[2].GetAccepted() || r[2].GetRejectReason() != riskv1.RejectReason_REJECT_REASON_INSUFFICIENT_FUNDS {
		t.Fatalf("unaffordable: %v", r[2])
	}
	acct := must[*riskv1.GetAccountResponse](t)(p.alice.GetAccount(ctx, &riskv1.GetAccountRequest{AccountId: "alice"}))
	if n := len(acct.GetAccount().GetReservations()); n != 1 {
		t.Fatalf("reservations after the batch: %d, want 1", n)
	}

	other := order("100", "1")
	other.AccountId = "bob"
	if _, err := p.alice.CheckOrders(ctx, &riskv1.CheckOrdersRequest{Orders: []*riskv1.CheckOrderRequest{order("100", "1"), other}}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("an account key on CheckOrders: %v", err)
	}
	acct = must[*riskv1.GetAccountResponse](t)(p.alice.GetAccount(ctx, &riskv1.GetAccountRequest{AccountId: "alice"}))
	if n := len(acct.GetAccount().GetReservations()); n != 1 {
		t.Fatalf("a refused batch reserved something: %d reservations", n)
	}

	id := r[0].GetReservationId()
	if _, err := p.alice.ReleaseReservations(ctx, &riskv1.ReleaseReservationsRequest{ReservationIds: []uint64{id}}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("release by an account key: %v", err)
	}
	rel := must[*riskv1.ReleaseReservationsResponse](t)(p.admin.ReleaseReservations(ctx, &riskv1.ReleaseReservationsRequest{ReservationIds: []uint64{id, id, 987654}}))
	if rel.GetReleased() != 1 || rel.GetNotOpen() != 2 {
		t.Fatalf("release: %v", rel)
	}
	if _, err := p.admin.ReleaseReservations(ctx, &riskv1.ReleaseReservationsRequest{ReservationIds: []uint64{0}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("zero id: %v", err)
	}
	acct = must[*riskv1.GetAccountResponse](t)(p.alice.GetAccount(ctx, &riskv1.GetAccountRequest{AccountId: "alice"}))
	if n := len(acct.GetAccount().GetReservations()); n != 0 || balance(t, acct.GetAccount(), "USD").GetReserved() != "0" {
		t.Fatalf("after release: %v", acct)
	}
}
