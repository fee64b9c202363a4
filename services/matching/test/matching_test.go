package matching_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

var (
	buy  = matchingv1.Side_SIDE_BUY
	sell = matchingv1.Side_SIDE_SELL
)

// TestOrderFlowThroughRisk: orders are checked by the real risk service, trade, and settle there.
func TestOrderFlowThroughRisk(t *testing.T) {
	p := startPlatform(t)
	p.addSymbol(t)
	ctx := context.Background()

	md, err := p.alice.StreamMarketData(ctx, &matchingv1.StreamMarketDataRequest{Symbols: []string{"BTC-USD"}})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := md.Recv()
	if err != nil || snap.GetSnapshot() == nil {
		t.Fatalf("first market data message must be a snapshot: %v %v", snap, err)
	}

	ask := must(t)(p.bob.SubmitOrder(ctx, limitOrder("bob", "ask-1", sell, "50000", "0.3"))).(*matchingv1.SubmitOrderResponse)
	if ask.GetOrder().GetStatus() != matchingv1.OrderStatus_ORDER_STATUS_NEW {
		t.Fatalf("resting ask: %v", ask)
	}
	bid := must(t)(p.alice.SubmitOrder(ctx, limitOrder("alice", "bid-1", buy, "50100", "0.2"))).(*matchingv1.SubmitOrderResponse)
	if bid.GetOrder().GetStatus() != matchingv1.OrderStatus_ORDER_STATUS_FILLED || len(bid.GetFills()) != 1 || bid.GetFills()[0].GetPrice() != "50000" {
		t.Fatalf("crossing bid: %v", bid)
	}

	// Market data: the ask appearing, then the trade with the level shrinking, in sequence.
	u1, _ := md.Recv()
	u2, _ := md.Recv()
	if u1.GetSequence() != snap.GetSequence()+1 || u2.GetSequence() != u1.GetSequence()+1 {
		t.Fatalf("market data sequence: %d, %d, %d", snap.GetSequence(), u1.GetSequence(), u2.GetSequence())
	}
	if tr := u2.GetDelta().GetTrades(); len(tr) != 1 || tr[0].GetQuantity() != "0.2" || u2.GetDelta().GetLevels()[0].GetQuantity() != "0.1" {
		t.Fatalf("trade delta: %v", u2)
	}

	// Settlement reaches risk: alice +0.2 BTC, bob −0.2.
	testenv.WaitFor(t, 10*time.Second, "settlement in risk", func() bool {
		return position(t, p.risk, "alice") == "0.2" && position(t, p.risk, "bob") == "-0.2"
	})

	book := must(t)(p.alice.GetBook(ctx, &matchingv1.GetBookRequest{Symbol: "BTC-USD", Depth: 5})).(*matchingv1.GetBookResponse)
	if len(book.GetAsks()) != 1 || book.GetAsks()[0].GetQuantity() != "0.1" || book.GetLastPrice() != "50000" {
		t.Fatalf("book: %v", book)
	}
	if _, err := p.alice.GetBook(ctx, &matchingv1.GetBookRequest{Symbol: "BTC-USD", IncludeOrders: true}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("L3 for a non-admin: %v", err)
	}
	l3 := must(t)(p.admin.GetBook(ctx, &matchingv1.GetBookRequest{Symbol: "BTC-USD", IncludeOrders: true})).(*matchingv1.GetBookResponse)
	if len(l3.GetAskOrders()) != 1 || l3.GetAskOrders()[0].GetAccountId() != "bob" {
		t.Fatalf("L3: %v", l3)
	}

	// Risk refuses what alice cannot pay for: the order is rejected with the risk reason.
	big := must(t)(p.alice.SubmitOrder(ctx, limitOrder("alice", "too-big", buy, "2000000", "99"))).(*matchingv1.SubmitOrderResponse)
	if big.GetOrder().GetStatus() != matchingv1.OrderStatus_ORDER_STATUS_REJECTED ||
		big.GetOrder().GetRejectReason() != matchingv1.RejectReason_REJECT_REASON_RISK ||
		big.GetOrder().GetRiskRejectReason() != "REJECT_REASON_INSUFFICIENT_FUNDS" {
		t.Fatalf("unaffordable order: %v", big)
	}

	// Ownership: bob cannot act for alice, nor see her orders by id.
	if _, err := p.bob.CancelOrder(ctx, &matchingv1.CancelOrderRequest{AccountId: "alice", Symbol: "BTC-USD", ClientOrderId: "bid-1"}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("bob cancelling as alice: %v", err)
	}
	if _, err := p.bob.GetOrder(ctx, &matchingv1.GetOrderRequest{AccountId: "bob", Symbol: "BTC-USD", OrderId: bid.GetOrder().GetOrderId()}); status.Code(err) != codes.NotFound {
		t.Fatalf("bob reading alice's order: %v", err)
	}

	// Amend down keeps the order; cancel releases it, and risk's reservation goes with it.
	am := must(t)(p.bob.AmendOrder(ctx, &matchingv1.AmendOrderRequest{AccountId: "bob", Symbol: "BTC-USD", ClientOrderId: "ask-1", Quantity: "0.25"})).(*matchingv1.AmendOrderResponse)
	if am.GetOrder().GetQuantity() != "0.25" || am.GetOrder().GetRemainingQuantity() != "0.05" {
		t.Fatalf("amend: %v", am)
	}
	c := must(t)(p.bob.CancelOrder(ctx, &matchingv1.CancelOrderRequest{AccountId: "bob", Symbol: "BTC-USD", ClientOrderId: "ask-1"})).(*matchingv1.CancelOrderResponse)
	if c.GetOrder().GetStatus() != matchingv1.OrderStatus_ORDER_STATUS_CANCELLED {
		t.Fatalf("cancel: %v", c)
	}
	testenv.WaitFor(t, 10*time.Second, "reservations released in risk", func() bool {
		acct, err := p.risk.GetAccount(ctx, &riskv1.GetAccountRequest{AccountId: "bob"})
		return err == nil && len(acct.GetAccount().GetReservations()) == 0
	})
}

// TestBadInputIsRefusedAndChangesNothing: each malformed order names its field.
func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	p := startPlatform(t)
	p.addSymbol(t)
	ctx := context.Background()
	before := must(t)(p.admin.GetBook(ctx, &matchingv1.GetBookRequest{Symbol: "BTC-USD", IncludeOrders: true})).(*matchingv1.GetBookResponse)
	cases := []struct {
		field string
		mod   func(r *matchingv1.SubmitOrderRequest)
		code  codes.Code
	}{
		{"price", func(r *matchingv1.SubmitOrderRequest) { r.Price = "50000.25" }, codes.InvalidArgument}, // off the 0.5 tick
		{"quantity", func(r *matchingv1.SubmitOrderRequest) { r.Quantity = "0.0005" }, codes.InvalidArgument},
		{"quantity", func(r *matchingv1.SubmitOrderRequest) { r.Quantity = "-1" }, codes.InvalidArgument},
		{"price", func(r *matchingv1.SubmitOrderRequest) { r.Price = "1e3" }, codes.InvalidArgument},
		{"side", func(r *matchingv1.SubmitOrderRequest) { r.Side = 0 }, codes.InvalidArgument},
		{"trigger_price", func(r *matchingv1.SubmitOrderRequest) { r.Type = matchingv1.OrderType_ORDER_TYPE_STOP_LIMIT }, codes.InvalidArgument},
		{"client_order_id", func(r *matchingv1.SubmitOrderRequest) { r.ClientOrderId = "" }, codes.InvalidArgument},
		{"symbol", func(r *matchingv1.SubmitOrderRequest) { r.Symbol = "NOPE" }, codes.NotFound},
	}
	for _, tc := range cases {
		req := limitOrder("alice", "bad", buy, "50000", "0.1")
		tc.mod(req)
		_, err := p.alice.SubmitOrder(ctx, req)
		if status.Code(err) != tc.code || !strings.Contains(status.Convert(err).Message(), tc.field) {
			t.Errorf("%s: got %v, want %s naming %q", tc.field, err, tc.code, tc.field)
		}
	}
	// Post-only that would cross and an unfillable FOK are rejected with a reason, nothing rests.
	must(t)(p.bob.SubmitOrder(ctx, limitOrder("bob", "ask", sell, "50000", "0.1")))
	po := limitOrder("alice", "po", buy, "50000", "0.1")
	po.PostOnly = true
	r := must(t)(p.alice.SubmitOrder(ctx, po)).(*matchingv1.SubmitOrderResponse)
	if r.GetOrder().GetRejectReason() != matchingv1.RejectReason_REJECT_REASON_POST_ONLY_WOULD_CROSS {
		t.Fatalf("post-only: %v", r)
	}
	fok := limitOrder("alice", "fok", buy, "50000", "0.2")
	fok.TimeInForce = matchingv1.TimeInForce_TIME_IN_FORCE_FOK
	r = must(t)(p.alice.SubmitOrder(ctx, fok)).(*matchingv1.SubmitOrderResponse)
	if r.GetOrder().GetRejectReason() != matchingv1.RejectReason_REJECT_REASON_FOK_CANNOT_FILL || len(r.GetFills()) != 0 {
		t.Fatalf("FOK: %v", r)
	}
	after := must(t)(p.admin.GetBook(ctx, &matchingv1.GetBookRequest{Symbol: "BTC-USD", IncludeOrders: true})).(*matchingv1.GetBookResponse)
	if len(after.GetBidOrders()) != len(before.GetBidOrders()) || len(after.GetAskOrders()) != 1 {
		t.Fatalf("book changed by refused orders: %v", after)
	}
	if _, err := p.admin.ResumeSettlement(ctx, &matchingv1.ResumeSettlementRequest{Shard: 1 << 20}); status.Code(err) != codes.NotFound ||
		!strings.HasPrefix(status.Convert(err).Message(), "shard") {
		t.Errorf("ResumeSettlement of a shard that does not exist: %v, want NotFound naming shard", err)
	}
}

// TestStreamOrders: many commands in flight on one stream, every one answered.
func TestStreamOrders(t *testing.T) {
	p := startPlatform(t)
	p.addSymbol(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stream, err := p.admin.StreamOrders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
	go func() {
		// Commands one per message and several per message.
		msg := &matchingv1.StreamOrdersRequest{}
		for i := range n {
			side, acct, price := buy, "alice", "49000"
			if i%2 == 1 {
				side, acct, price = sell, "bob", "51000"
			}
			msg.Commands = append(msg.Commands, &matchingv1.OrderCommand{RequestId: uint64(i + 1), Command: &matchingv1.OrderCommand_Submit{
				Submit: limitOrder(acct, fmt.Sprintf("s-%d", i), side, price, "0.01")}})
			if i < 100 || len(msg.Commands) == 37 {
				_ = stream.Send(msg)
				msg = &matchingv1.StreamOrdersRequest{}
			}
		}
		msg.Commands = append(msg.Commands, &matchingv1.OrderCommand{RequestId: n + 1, Command: &matchingv1.OrderCommand_Submit{
			Submit: limitOrder("alice", "bad", buy, "49000.1", "0.01")}})
		_ = stream.Send(msg)
		_ = stream.CloseSend()
	}()
	seen := map[uint64]bool{}
	var badCode int32
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range resp.GetUpdates() {
			if u.GetRequestId() == n+1 {
				badCode = u.GetErrorCode()
				continue
			}
			if u.GetErrorCode() != 0 || u.GetOrder().GetStatus() != matchingv1.OrderStatus_ORDER_STATUS_NEW || seen[u.GetRequestId()] {
				t.Fatalf("answer %d: %v", u.GetRequestId(), u)
			}
			seen[u.GetRequestId()] = true
		}
	}
	if len(seen) != n || codes.Code(badCode) != codes.InvalidArgument {
		t.Fatalf("answered %d of %d; bad command code %v", len(seen), n, codes.Code(badCode))
	}
	book := must(t)(p.admin.GetBook(context.Background(), &matchingv1.GetBookRequest{Symbol: "BTC-USD"})).(*matchingv1.GetBookResponse)
	if book.GetBids()[0].GetOrders() != n/2 || book.GetAsks()[0].GetOrders() != n/2 {
		t.Fatalf("book after stream: %v", book)
	}
}

// TestCrashRecovery kills matching with SIGKILL while orders stream in, restarts it, and checks
// that every acknowledged order is there, that fills are settled in risk exactly once (risk's
// positions equal the fills matching reports), and that nothing is left reserved for closed orders.
func TestCrashRecovery(t *testing.T) {
	p := startPlatform(t, "--snapshot-every=50")
	p.addSymbol(t)

	var mu sync.Mutex
	acked := map[string]bool{}
	attempted := []string{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				acct, cl, side, price := "alice", p.alice, buy, fmt.Sprintf("%d", 50000+(i%7)*5)
				if (i+w)%2 == 1 {
					acct, cl, side, price = "bob", p.bob, sell, fmt.Sprintf("%d", 50000-(i%5)*5)
				}
				cid := fmt.Sprintf("w%d-%d", w, i)
				mu.Lock()
				attempted = append(attempted, acct+"/"+cid)
				mu.Unlock()
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err := cl.SubmitOrder(ctx, limitOrder(acct, cid, side, price, "0.01"))
				cancel()
				if err != nil {
					return // the process is gone
				}
				mu.Lock()
				acked[acct+"/"+cid] = true
				mu.Unlock()
			}
		}()
	}
	testenv.WaitFor(t, 30*time.Second, "some orders acknowledged", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 300
	})
	p.stopMatching(t, syscall.SIGKILL)
	close(stop)
	wg.Wait()

	p.startMatching(t, "--snapshot-every=50")
	ctx := context.Background()
	filled := map[string]decimal.Decimal{"alice": decimal.Zero, "bob": decimal.Zero}
	for _, key := range attempted {
		acct, cid, _ := strings.Cut(key, "/")
		cl := p.alice
		if acct == "bob" {
			cl = p.bob
		}
		resp, err := cl.GetOrder(ctx, &matchingv1.GetOrderRequest{AccountId: acct, Symbol: "BTC-USD", ClientOrderId: cid})
		if status.Code(err) == codes.NotFound {
			if acked[key] {
				t.Fatalf("acknowledged order %s lost in the crash", key)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		q := decimal.RequireFromString(resp.GetOrder().GetFilledQuantity())
		if acct == "bob" {
			q = q.Neg()
		}
		filled[acct] = filled[acct].Add(q)
	}
	t.Logf("%d attempted, %d acknowledged; alice filled %s, bob %s", len(attempted), len(acked), filled["alice"], filled["bob"])
	if filled["alice"].IsZero() {
		t.Fatal("the workload should have traded")
	}
	testenv.WaitFor(t, 20*time.Second, "risk positions equal matching's fills", func() bool {
		return decimal.RequireFromString(position(t, p.risk, "alice")).Equal(filled["alice"]) &&
			decimal.RequireFromString(position(t, p.risk, "bob")).Equal(filled["bob"])
	})
	// Matching still works after recovery.
	r := must(t)(p.alice.SubmitOrder(ctx, limitOrder("alice", "after", buy, "1000", "0.01"))).(*matchingv1.SubmitOrderResponse)
	if r.GetOrder().GetStatus() != matchingv1.OrderStatus_ORDER_STATUS_NEW {
		t.Fatalf("order after recovery: %v", r)
	}
}
