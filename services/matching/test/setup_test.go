package matching_test

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/bourse-dev/bourse/pkg/client"
	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

const (
	adminKey = "admin-key"
	aliceKey = "alice-key"
	bobKey   = "bob-key"
	// riskKey is matching's own identity towards risk (service:matching), not an admin key.
	riskKey = "matching-risk-key"
	apiKeys = adminKey + "=admin:ops," + aliceKey + "=account:alice," + bobKey + "=account:bob," + riskKey + "=service:matching"

	riskPkg     = "github.com/bourse-dev/bourse/services/risk/cmd/risk"
	matchingPkg = "github.com/bourse-dev/bourse/services/matching/cmd/matching"
)

// platform is a real Consul agent, risk service and matching service.
type platform struct {
	agent       *testenv.ConsulAgent
	riskProc    *testenv.Process
	matching    *testenv.Process
	matchingBin string
	dataDir     string

	risk              riskv1.RiskServiceClient
	admin, alice, bob matchingv1.MatchingServiceClient
}

func dial(t *testing.T, addr, key string) *grpc.ClientConn {
	t.Helper()
	conn, err := client.Dial(addr, client.Options{APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func startPlatform(t *testing.T, extra ...string) *platform {
	t.Helper()
	p := &platform{agent: testenv.StartConsul(t), dataDir: filepath.Join(t.TempDir(), "matching")}
	p.riskProc = testenv.StartService(t, testenv.Build(t, riskPkg), nil,
		"--consul-addr="+p.agent.Addr, "--api-keys="+apiKeys, "--check-interval=1s", "--data-dir="+filepath.Join(t.TempDir(), "risk"))
	p.risk = riskv1.NewRiskServiceClient(dial(t, p.riskProc.GRPCAddr, adminKey))
	setupRisk(t, p.risk)
	testenv.WaitFor(t, 20*time.Second, "risk passing in consul", func() bool { return len(p.agent.Passing(t, "risk")) == 1 })
	p.matchingBin = testenv.Build(t, matchingPkg)
	p.startMatching(t, extra...)
	return p
}

func (p *platform) startMatching(t *testing.T, extra ...string) {
	t.Helper()
	args := append([]string{"--consul-addr=" + p.agent.Addr, "--api-keys=" + apiKeys, "--check-interval=1s",
		"--risk-addr=consul:///risk", "--risk-api-key=" + riskKey, "--data-dir=" + p.dataDir, "--shards=2"}, extra...)
	p.matching = testenv.StartService(t, p.matchingBin, nil, args...)
	p.admin = matchingv1.NewMatchingServiceClient(dial(t, p.matching.GRPCAddr, adminKey))
	p.alice = matchingv1.NewMatchingServiceClient(dial(t, p.matching.GRPCAddr, aliceKey))
	p.bob = matchingv1.NewMatchingServiceClient(dial(t, p.matching.GRPCAddr, bobKey))
}

func (p *platform) stopMatching(t *testing.T, sig syscall.Signal) {
	t.Helper()
	p.matching.Signal(sig)
	if !p.matching.WaitExit(20 * time.Second) {
		t.Fatal("matching did not stop")
	}
}

// setupRisk defines BTC-USD (price 2 decimals, quantity 4) with a 0.1% taker fee and funds alice
// with USD and bob with BTC.
func setupRisk(t *testing.T, rc riskv1.RiskServiceClient) {
	t.Helper()
	ctx := context.Background()
	for _, a := range []string{"USD", "BTC"} {
		must(t)(rc.DefineAsset(ctx, &riskv1.DefineAssetRequest{Asset: &riskv1.Asset{AssetId: a, Scale: 8}}))
	}
	must(t)(rc.DefineSymbol(ctx, &riskv1.DefineSymbolRequest{Symbol: &riskv1.Symbol{
		Symbol: "BTC-USD", BaseAsset: "BTC", QuoteAsset: "USD", PriceScale: 2, QtyScale: 4, TakerFeeRate: "0.001"}}))
	for _, acct := range []string{"alice", "bob"} {
		must(t)(rc.OpenAccount(ctx, &riskv1.OpenAccountRequest{AccountId: acct}))
	}
	must(t)(rc.Credit(ctx, &riskv1.CreditRequest{AccountId: "alice", AssetId: "USD", Amount: "100000000", Ref: "dep-alice"}))
	must(t)(rc.Credit(ctx, &riskv1.CreditRequest{AccountId: "bob", AssetId: "BTC", Amount: "1000", Ref: "dep-bob"}))
}

func (p *platform) addSymbol(t *testing.T) {
	t.Helper()
	must(t)(p.admin.AddSymbol(context.Background(), &matchingv1.AddSymbolRequest{Symbol: &matchingv1.Symbol{
		Symbol: "BTC-USD", TickSize: "0.5", LotSize: "0.001", MinQuantity: "0.001", MaxQuantity: "100"}}))
}

func must(t *testing.T) func(any, error) any {
	return func(v any, err error) any {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func limitOrder(account, cid string, side matchingv1.Side, price, qty string) *matchingv1.SubmitOrderRequest {
	return &matchingv1.SubmitOrderRequest{AccountId: account, Symbol: "BTC-USD", ClientOrderId: cid, Side: side,
		Type: matchingv1.OrderType_ORDER_TYPE_LIMIT, Price: price, Quantity: qty}
}

func position(t *testing.T, rc riskv1.RiskServiceClient, account string) string {
	t.Helper()
	resp, err := rc.GetAccount(context.Background(), &riskv1.GetAccountRequest{AccountId: account})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range resp.GetAccount().GetPositions() {
		if p.GetSymbol() == "BTC-USD" {
			return p.GetQuantity()
		}
	}
	return "0"
}
