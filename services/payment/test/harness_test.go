// Package payment_test runs the payment binary against real processes: Consul, risk, the acquirer,
// and PostgreSQL for the replica tests.
package payment_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/bourse-dev/bourse/pkg/client"
	acquirerv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/acquirer/v1"
	paymentv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/payment/v1"
	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

const (
	paymentPkg  = "github.com/bourse-dev/bourse/services/payment/cmd/payment"
	acquirerPkg = "github.com/bourse-dev/bourse/services/payment/cmd/acquirer"
	riskPkg     = "github.com/bourse-dev/bourse/services/risk/cmd/risk"

	adminKey   = "k-admin"
	aliceKey   = "k-alice"
	bobKey     = "k-bob"
	paymentKey = "k-payment" // payment's service identity at risk and at the acquirer
	keyring    = adminKey + "=admin:ops," + aliceKey + "=account:alice," + bobKey + "=account:bob," + paymentKey + "=service:payment"
)

type stack struct {
	agent    *testenv.ConsulAgent
	risk     *testenv.Process
	acquirer *testenv.Process
	keyFile  string
	dbArg    string

	riskAdmin riskv1.RiskServiceClient
	acqAdmin  acquirerv1.AcquirerServiceClient
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

// startStack starts Consul, risk (USD defined, alice and bob open) and the acquirer with its fault
// flags; payment processes are started with startPayment. dbArg selects payment's store.
func startStack(t *testing.T, dbArg string, acquirerArgs ...string) *stack {
	t.Helper()
	s := &stack{agent: testenv.StartConsul(t), dbArg: dbArg}
	s.keyFile = filepath.Join(t.TempDir(), "payment.key")
	if err := os.WriteFile(s.keyFile, []byte(paymentKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.risk = testenv.StartService(t, testenv.Build(t, riskPkg), nil, "--consul-addr="+s.agent.Addr, "--check-interval=1s",
		"--api-keys="+keyring, "--data-dir="+filepath.Join(t.TempDir(), "risk"), "--rate-limit-account=off")
	s.riskAdmin = riskv1.NewRiskServiceClient(dial(t, s.risk.GRPCAddr, adminKey))
	ctx := context.Background()
	if _, err := s.riskAdmin.DefineAsset(ctx, &riskv1.DefineAssetRequest{Asset: &riskv1.Asset{AssetId: "USD", Scale: 8}}); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"alice", "bob"} {
		if _, err := s.riskAdmin.OpenAccount(ctx, &riskv1.OpenAccountRequest{AccountId: a}); err != nil {
			t.Fatal(err)
		}
	}
	s.acquirer = s.startAcquirer(t, filepath.Join(t.TempDir(), "acquirer"), acquirerArgs...)
	testenv.WaitFor(t, 20*time.Second, "risk and acquirer passing in Consul", func() bool {
		return len(s.agent.Passing(t, "risk")) > 0 && len(s.agent.Passing(t, "acquirer")) > 0
	})
	return s
}

func (s *stack) startAcquirer(t *testing.T, dataDir string, args ...string) *testenv.Process {
	p := testenv.StartService(t, testenv.Build(t, acquirerPkg), nil, append([]string{"--consul-addr=" + s.agent.Addr,
		"--check-interval=1s", "--api-keys=" + keyring, "--data-dir=" + dataDir, "--rate-limit-account=off"}, args...)...)
	s.acqAdmin = acquirerv1.NewAcquirerServiceClient(dial(t, p.GRPCAddr, adminKey))
	return p
}

type paymentProc struct {
	*testenv.Process
	admin, alice, bob paymentv1.PaymentServiceClient
}

// startPayment starts a payment process that finds risk and the acquirer through Consul.
func (s *stack) startPayment(t *testing.T, args ...string) *paymentProc {
	t.Helper()
	p := testenv.StartService(t, testenv.Build(t, paymentPkg), nil, append([]string{"--consul-addr=" + s.agent.Addr,
		"--check-interval=1s", "--api-keys=" + keyring, s.dbArg, "--risk-api-key-file=" + s.keyFile,
		"--acquirer-api-key-file=" + s.keyFile, "--rate-limit-account=off", "--processor-timeout=1500ms",
		"--settle-after=2s", "--janitor-interval=200ms", "--outbox-interval=50ms", "--webhook-allow-private-addresses"}, args...)...)
	pp := &paymentProc{Process: p}
	pp.admin = paymentv1.NewPaymentServiceClient(dial(t, p.GRPCAddr, adminKey))
	pp.alice = paymentv1.NewPaymentServiceClient(dial(t, p.GRPCAddr, aliceKey))
	pp.bob = paymentv1.NewPaymentServiceClient(dial(t, p.GRPCAddr, bobKey))
	return pp
}

func kill(t *testing.T, p *testenv.Process) {
	t.Helper()
	p.Signal(syscall.SIGKILL)
	if !p.WaitExit(10 * time.Second) {
		t.Fatal("process did not die")
	}
}

func usd(amount int64) *paymentv1.Money { return &paymentv1.Money{Amount: amount, Currency: "USD"} }

func deposit(account string, amount int64, key string) *paymentv1.CreatePaymentRequest {
	return &paymentv1.CreatePaymentRequest{AccountId: account, Amount: usd(amount), Method: paymentv1.PaymentMethod_PAYMENT_METHOD_CARD,
		PaymentToken: "tok_visa", IdempotencyKey: key}
}

// riskUSD is the account's total USD in risk, as a decimal string ("12.5").
func (s *stack) riskUSD(t *testing.T, account string) string {
	t.Helper()
	a, err := s.riskAdmin.GetAccount(context.Background(), &riskv1.GetAccountRequest{AccountId: account})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range a.GetAccount().GetBalances() {
		if b.GetAssetId() == "USD" {
			if v := b.GetTotal(); strings.Contains(v, ".") {
				return strings.TrimRight(strings.TrimRight(v, "0"), ".")
			}
			return b.GetTotal()
		}
	}
	return "0"
}

// operations lists the acquirer's operations of a kind.
func (s *stack) operations(t *testing.T, kind acquirerv1.OperationKind) []*acquirerv1.Operation {
	t.Helper()
	var out []*acquirerv1.Operation
	tok := ""
	for {
		r, err := s.acqAdmin.ListOperations(context.Background(), &acquirerv1.ListOperationsRequest{Kind: kind, PageSize: 1000, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r.GetOperations()...)
		if tok = r.GetNextPageToken(); tok == "" {
			return out
		}
	}
}

// checkLedger asserts the payment ledger sums to zero per currency and returns the balance of one
// ledger account.
func checkLedger(t *testing.T, p *paymentProc, account string) int64 {
	t.Helper()
	r, err := p.admin.GetLedgerBalance(context.Background(), &paymentv1.GetLedgerBalanceRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range r.GetTotals() {
		if m.GetAmount() != 0 {
			t.Fatalf("ledger %s sums to %d, not 0", m.GetCurrency(), m.GetAmount())
		}
	}
	var bal int64
	for _, b := range r.GetBalances() {
		if b.GetLedgerAccount() == account {
			bal += b.GetBalance()
		}
	}
	return bal
}

func ledgerTxs(t *testing.T, p *paymentProc, ref string) []*paymentv1.LedgerTransaction {
	t.Helper()
	r, err := p.admin.ListLedgerEntries(context.Background(), &paymentv1.ListLedgerEntriesRequest{Reference: ref, PageSize: 500})
	if err != nil {
		t.Fatal(err)
	}
	return r.GetTransactions()
}
