package risk_test

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/bourse-dev/bourse/pkg/client"
	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

const (
	adminKey = "risk-admin"
	aliceKey = "risk-alice"
	// matchingKey is matching's service identity: risk's order checks and settlement are for it.
	matchingKey = "risk-matching"
	apiKeys     = adminKey + "=admin:ops," + aliceKey + "=account:alice," + matchingKey + "=service:matching"
	mainPkg     = "github.com/bourse-dev/bourse/services/risk/cmd/risk"
)

type riskProc struct {
	*testenv.Process
	admin, alice, matching riskv1.RiskServiceClient
}

func startRisk(t *testing.T, agent *testenv.ConsulAgent, dbArg string) *riskProc {
	t.Helper()
	p := testenv.StartService(t, testenv.Build(t, mainPkg), nil,
		"--consul-addr="+agent.Addr, "--api-keys="+apiKeys, "--check-interval=1s", dbArg)
	rp := &riskProc{Process: p}
	for key, dst := range map[string]*riskv1.RiskServiceClient{adminKey: &rp.admin, aliceKey: &rp.alice, matchingKey: &rp.matching} {
		conn, err := client.Dial(p.GRPCAddr, client.Options{APIKey: key})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		*dst = riskv1.NewRiskServiceClient(conn)
	}
	return rp
}

func (p *riskProc) stop(t *testing.T) {
	t.Helper()
	p.Signal(syscall.SIGTERM)
	if !p.WaitExit(15 * time.Second) {
		t.Fatal("risk did not stop")
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// eachStore runs the scenario on SQLite and on PostgreSQL.
func eachStore(t *testing.T, fn func(t *testing.T, dbArg string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, "--data-dir="+filepath.Join(t.TempDir(), "risk")) })
	t.Run("postgres", func(t *testing.T) { fn(t, "--database-url="+testenv.StartPostgres(t)) })
}

func setup(t *testing.T, p *riskProc) {
	ctx := context.Background()
	must[*riskv1.DefineAssetResponse](t)(p.admin.DefineAsset(ctx, &riskv1.DefineAssetRequest{Asset: &riskv1.Asset{AssetId: "USD", Scale: 8}}))
	must[*riskv1.DefineAssetResponse](t)(p.admin.DefineAsset(ctx, &riskv1.DefineAssetRequest{Asset: &riskv1.Asset{AssetId: "BTC", Scale: 8}}))
	must[*riskv1.DefineSymbolResponse](t)(p.admin.DefineSymbol(ctx, &riskv1.DefineSymbolRequest{Symbol: &riskv1.Symbol{
		Symbol: "BTC-USD", BaseAsset: "BTC", QuoteAsset: "USD", PriceScale: 2, QtyScale: 4, TakerFeeRate: "0.001"}}))
	for _, acct := range []string{"alice", "bob"} {
		must[*riskv1.OpenAccountResponse](t)(p.admin.OpenAccount(ctx, &riskv1.OpenAccountRequest{AccountId: acct}))
	}
}

func trade(resAlice, resBob uint64, id string) *riskv1.ApplyExecutionsRequest {
	at := timestamppb.New(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	return &riskv1.ApplyExecutionsRequest{Executions: []*riskv1.Execution{
		{ExecId: id + "-b", ReservationId: resAlice, AccountId: "alice", Symbol: "BTC-USD", Side: riskv1.Side_SIDE_BUY, Price: "50000", Quantity: "1", Fee: "50", Time: at},
		{ExecId: id + "-s", ReservationId: resBob, AccountId: "bob", Symbol: "BTC-USD", Side: riskv1.Side_SIDE_SELL, Price: "50000", Quantity: "1", Fee: "50", Time: at},
	}}
}

func balance(t *testing.T, acct *riskv1.Account, asset string) *riskv1.Balance {
	t.Helper()
	for _, b := range acct.GetBalances() {
		if b.GetAssetId() == asset {
			return b
		}
	}
	return &riskv1.Balance{AssetId: asset, Total: "0", Reserved: "0", Available: "0"}
}

// The whole flow: credit, reserve, settle, read — then a restart that loses nothing and applies
// nothing twice.
func TestCreditCheckSettleRestart(t *testing.T) {
	eachStore(t, func(t *testing.T, dbArg string) {
		agent := testenv.StartConsul(t)
		p := startRisk(t, agent, dbArg)
		setup(t, p)
		ctx := context.Background()

		credit := &riskv1.CreditRequest{AccountId: "alice", AssetId: "USD", Amount: "100000", Ref: "dep-1"}
		first := must[*riskv1.CreditResponse](t)(p.admin.Credit(ctx, credit))
		again := must[*riskv1.CreditResponse](t)(p.admin.Credit(ctx, credit))
		if first.GetBalance() != "100000" || first.GetDuplicate() || !again.GetDuplicate() || again.GetBalance() != "100000" {
			t.Fatalf("credit %v then %v", first, again)
		}
		must[*riskv1.CreditResponse](t)(p.admin.Credit(ctx, &riskv1.CreditRequest{AccountId: "bob", AssetId: "BTC", Amount: "10", Ref: "dep-2"}))

		buy := must[*riskv1.CheckOrderResponse](t)(p.matching.CheckOrder(ctx, &riskv1.CheckOrderRequest{AccountId: "alice", Symbol: "BTC-USD",
			Side: riskv1.Side_SIDE_BUY, Type: riskv1.OrderType_ORDER_TYPE_LIMIT, Price: "50000", Quantity: "1"}))
		sell := must[*riskv1.CheckOrderResponse](t)(p.admin.CheckOrder(ctx, &riskv1.CheckOrderRequest{AccountId: "bob", Symbol: "BTC-USD",
			Side: riskv1.Side_SIDE_SELL, Type: riskv1.OrderType_ORDER_TYPE_LIMIT, Price: "50000", Quantity: "1"}))
		if !buy.GetAccepted() || !sell.GetAccepted() {
			t.Fatalf("checks: %v %v", buy, sell)
		}
		alice := must[*riskv1.GetAccountResponse](t)(p.alice.GetAccount(ctx, &riskv1.GetAccountRequest{AccountId: "alice"})).GetAccount()
		if b := balance(t, alice, "USD"); b.GetReserved() != "50050" || b.GetAvailable() != "49950" {
			t.Fatalf("after reserve: %v (want 50000 + 0.1%% fee reserved)", b)
		}

		res := must[*riskv1.ApplyExecutionsResponse](t)(p.admin.ApplyExecutions(ctx, trade(buy.GetReservationId(), sell.GetReservationId(), "t1")))
		if res.GetApplied() != 2 {
			t.Fatalf("applied %v", res)
		}
		res = must[*riskv1.ApplyExecutionsResponse](t)(p.admin.ApplyExecutions(ctx, trade(buy.GetReservationId(), sell.GetReservationId(), "t1")))
		if res.GetApplied() != 0 || res.GetDuplicates() != 2 {
			t.Fatalf("replayed fills: %v", res)
		}
		alice = must[*riskv1.GetAccountResponse](t)(p.admin.GetAccount(ctx, &riskv1.GetAccountRequest{AccountId: "alice"})).GetAccount()
		if usd, btc := balance(t, alice, "USD"), balance(t, alice, "BTC"); usd.GetTotal() != "49950" || usd.GetReserved() != "0" || btc.GetTotal() != "1" {
			t.Fatalf("after fill: USD %v BTC %v", usd, btc)
		}
		if pos := alice.GetPositions(); len(pos) != 1 || pos[0].GetQuantity() != "1" || pos[0].GetAveragePrice() != "50000" || pos[0].GetFeesPaid() != "50" {
			t.Fatalf("position %v", pos)
		}
		bob := must[*riskv1.GetAccountResponse](t)(p.admin.GetAccount(ctx, &riskv1.GetAccountRequest{AccountId: "bob"})).GetAccount()
		fees := must[*riskv1.GetAccountResponse](t)(p.admin.GetAccount(ctx, &riskv1.GetAccountRequest{AccountId: "fees"})).GetAccount()
		if balance(t, fees, "USD").GetTotal() != "100" || balance(t, bob, "USD").GetTotal() != "49950" {
			t.Fatalf("fees %v bob %v", fees.GetBalances(), bob.GetBalances())
		}

		// Restart on the same database.
		p.stop(t)
		p = startRisk(t, agent, dbArg)
		for _, id := range []string{"alice", "bob", "fees"} {
			before := map[string]*riskv1.Account{"alice": alice, "bob": bob, "fees": fees}[id]
			after := must[*riskv1.GetAccountResponse](t)(p.admin.GetAccount(ctx, &riskv1.GetAccountRequest{AccountId: id})).GetAccount()
			if !proto.Equal(before, after) {
				t.Fatalf("%s changed across restart:\nbefore %v\nafter  %v", id, before, after)
			}
		}
		res = must[*riskv1.ApplyExecutionsResponse](t)(p.admin.ApplyExecutions(ctx, trade(buy.GetReservationId(), sell.GetReservationId(), "t1")))
		if res.GetApplied() != 0 || res.GetDuplicates() != 2 {
			t.Fatalf("fills applied twice across restart: %v", res)
		}
		if again := must[*riskv1.CreditResponse](t)(p.admin.Credit(ctx, credit)); !again.GetDuplicate() {
			t.Fatal("credit applied twice across restart")
		}
	})
}

// Bad input is a clear error naming the field and changes nothing; reject reasons come as enums.
func TestBadInputAndRejects(t *testing.T) {
	eachStore(t, testBadInputAndRejects)
}

func testBadInputAndRejects(t *testing.T, dbArg string) {
	agent := testenv.StartConsul(t)
	p := startRisk(t, agent, dbArg)
	setup(t, p)
	ctx := context.Background()
	must[*riskv1.CreditResponse](t)(p.admin.Credit(ctx, &riskv1.CreditRequest{AccountId: "alice", AssetId: "USD", Amount: "1000", Ref: "d"}))
	before := must[*riskv1.GetAccountResponse](t)(p.admin.GetAccount(ctx, &riskv1.GetAccountRequest{AccountId: "alice"})).GetAccount()

	order := func(edit func(*riskv1.CheckOrderRequest)) *riskv1.CheckOrderRequest {
		r := &riskv1.CheckOrderRequest{AccountId: "alice", Symbol: "BTC-USD", Side: riskv1.Side_SIDE_BUY,
			Type: riskv1.OrderType_ORDER_TYPE_LIMIT, Price: "100", Quantity: "1"}
		edit(r)
		return r
	}
	for _, c := range []struct {
		req   *riskv1.CheckOrderRequest
		code  codes.Code
		field string
	}{
		{order(func(r *riskv1.CheckOrderRequest) { r.Price = "abc" }), codes.InvalidArgument, "price"},
		{order(func(r *riskv1.CheckOrderRequest) { r.Price = "100.001" }), codes.InvalidArgument, "price"},
		{order(func(r *riskv1.CheckOrderRequest) { r.Quantity = "-1" }), codes.InvalidArgument, "quantity"},
		{order(func(r *riskv1.CheckOrderRequest) { r.Quantity = "0" }), codes.InvalidArgument, "quantity"},
		{order(func(r *riskv1.CheckOrderRequest) { r.Side = 0 }), codes.InvalidArgument, "side"},
		{order(func(r *riskv1.CheckOrderRequest) { r.Type = 7 }), codes.InvalidArgument, "type"},
		{order(func(r *riskv1.CheckOrderRequest) { r.Symbol = "ETH-USD" }), codes.NotFound, "symbol"},
		{order(func(r *riskv1.CheckOrderRequest) { r.AccountId = "bob" }), codes.PermissionDenied, ""},
		{order(func(r *riskv1.CheckOrderRequest) { r.AccountId = "carol" }), codes.NotFound, "account_id"},
	} {
		client := p.matching
		switch c.req.AccountId {
		case "carol":
			client = p.admin
		case "bob": // a customer key reaches no order check, least of all another account's
			client = p.alice
		}
		_, err := client.CheckOrder(ctx, c.req)
		st := status.Convert(err)
		if st.Code() != c.code || !strings.HasPrefix(st.Message(), c.field) {
			t.Errorf("CheckOrder %v: %v %q, want %v naming %q", c.req, st.Code(), st.Message(), c.code, c.field)
		}
	}
	if _, err := p.alice.Credit(ctx, &riskv1.CreditRequest{AccountId: "alice", AssetId: "USD", Amount: "1", Ref: "x"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("account crediting itself: %v", err)
	}
	// Money leaves through payment and orders reach risk through matching, never from a customer key.
	if _, err := p.alice.Debit(ctx, &riskv1.DebitRequest{AccountId: "alice", AssetId: "USD", Amount: "1", Ref: "w"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("account debiting itself: %v", err)
	}
	if _, err := p.alice.CheckOrder(ctx, order(func(*riskv1.CheckOrderRequest) {})); status.Code(err) != codes.PermissionDenied {
		t.Errorf("account checking its own order directly: %v", err)
	}
	if _, err := p.admin.Credit(ctx, &riskv1.CreditRequest{AccountId: "alice", AssetId: "USD", Amount: "1.000000001", Ref: "x"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("amount finer than the asset scale: %v", err)
	}
	if _, err := p.admin.Debit(ctx, &riskv1.DebitRequest{AccountId: "alice", AssetId: "USD", Amount: "5000", Ref: "w"}); err == nil {
		t.Error("debit below zero accepted")
	}
	if _, err := p.admin.ApplyExecutions(ctx, &riskv1.ApplyExecutionsRequest{Executions: []*riskv1.Execution{{ExecId: "e", ReservationId: 999,
		AccountId: "alice", Symbol: "BTC-USD", Side: riskv1.Side_SIDE_BUY, Price: "1", Quantity: "1", Time: timestamppb.Now()}}}); err == nil {
		t.Error("fill for an unknown reservation accepted")
	}
	after := must[*riskv1.GetAccountResponse](t)(p.admin.GetAccount(ctx, &riskv1.GetAccountRequest{AccountId: "alice"})).GetAccount()
	if !proto.Equal(before, after) {
		t.Fatalf("bad input changed the account:\nbefore %v\nafter  %v", before, after)
	}

	// Reject reasons arrive as enums.
	res := must[*riskv1.CheckOrderResponse](t)(p.matching.CheckOrder(ctx, order(func(r *riskv1.CheckOrderRequest) { r.Quantity = "1000" })))
	if res.GetAccepted() || res.GetRejectReason() != riskv1.RejectReason_REJECT_REASON_INSUFFICIENT_FUNDS {
		t.Errorf("oversized order: %v", res)
	}
	must[*riskv1.SetTradingStateResponse](t)(p.admin.SetTradingState(ctx, &riskv1.SetTradingStateRequest{AccountId: "alice", State: riskv1.TradingState_TRADING_STATE_HALTED}))
	res = must[*riskv1.CheckOrderResponse](t)(p.matching.CheckOrder(ctx, order(func(*riskv1.CheckOrderRequest) {})))
	if res.GetAccepted() || res.GetRejectReason() != riskv1.RejectReason_REJECT_REASON_ACCOUNT_HALTED {
		t.Errorf("halted account: %v", res)
	}
	if _, err := p.alice.SetTradingState(ctx, &riskv1.SetTradingStateRequest{AccountId: "alice", State: riskv1.TradingState_TRADING_STATE_ACTIVE}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("account lifting its own kill switch: %v", err)
	}
}
