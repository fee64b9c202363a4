// Package e2e runs the platform as make run starts it, tells the whole story with `make demo`
// (deposit, trade, withdraw, train, serve, infer), and checks it through the services' own APIs and
// Jaeger's: one trace per flow across the services it names, money that adds up exactly, every
// service registered and passing.
package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"google.golang.org/grpc"

	"github.com/bourse-dev/bourse/pkg/client"
	paymentv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/payment/v1"
	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
	"github.com/bourse-dev/bourse/pkg/money"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

const jaegerURL = "http://127.0.0.1:16686"

var platformServices = []string{"discovery", "risk", "matching", "inference", "payment", "acquirer", "training-coordinator", "training-worker"}

func TestTheWholeStory(t *testing.T) {
	m := testenv.StartMakeRun(t, 10*time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	story, err := m.Run(ctx, "scripts/demo.sh", "BOURSE_DEMO_TAG=e2e")
	if err != nil {
		t.Fatalf("make demo: %v\n%s", err, story)
	}
	t.Logf("make demo:\n%s", story)

	t.Run("every service registered and passing in Consul", func(t *testing.T) {
		for _, svc := range platformServices {
			if n := passing(t, svc); n == 0 {
				t.Errorf("%s has no passing instance in Consul", svc)
			}
		}
	})

	traces := map[string]string{}
	for _, line := range strings.Split(story, "\n") {
		if m := regexp.MustCompile(`^\s+(\w+) \(.*\)\s+bourse trace ([0-9a-f]{32})$`).FindStringSubmatch(line); m != nil {
			traces[m[1]] = m[2]
		}
	}
	t.Run("an order is one trace: client, matching, risk", func(t *testing.T) {
		waitTrace(t, traces["order"], "bourse-cli bourse order buy", "matching bourse.matching.v1.MatchingService/SubmitOrder",
			"risk bourse.risk.v1.RiskService/CheckOrders")
	})
	t.Run("a deposit is one trace: client, payment, inference, acquirer, risk", func(t *testing.T) {
		waitTrace(t, traces["deposit"], "bourse-cli bourse deposit", "payment bourse.payment.v1.PaymentService/CreatePayment",
			"inference inference.GRPCInferenceService/ModelInfer", "acquirer bourse.acquirer.v1.AcquirerService/Authorize",
			"risk bourse.risk.v1.RiskService/Credit")
	})

	t.Run("money adds up exactly", func(t *testing.T) {
		admin := m.Key(t, "admin.key")
		pc := dial(t, "127.0.0.1:7005", admin)
		rc := dial(t, "127.0.0.1:7002", admin)
		pay := paymentv1.NewPaymentServiceClient(pc)
		risk := riskv1.NewRiskServiceClient(rc)

		// What came in and went out, per account, from payment's own records.
		in := map[string]decimal.Decimal{}
		for _, acct := range []string{"alice", "bob"} {
			resp, err := pay.ListPayments(ctx, &paymentv1.ListPaymentsRequest{AccountId: acct, Status: paymentv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED, PageSize: 100})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range resp.GetPayments() {
				in[acct] = in[acct].Add(major(t, p.GetAmountCaptured()).Sub(major(t, p.GetAmountRefunded())))
			}
		}
		out := map[string]decimal.Decimal{}
		// The payouts the story made, by the ids it printed; what happened to them, from payment.
		wd := regexp.MustCompile(`(po_[a-z0-9]+)\s+(\w+)\s+([0-9.]+) USD`).FindAllStringSubmatch(story, -1)
		for _, w := range wd {
			resp, err := pay.GetPayout(ctx, &paymentv1.GetPayoutRequest{PayoutId: w[1]})
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetPayout().GetStatus() == paymentv1.PayoutStatus_PAYOUT_STATUS_SUCCEEDED {
				out[w[2]] = out[w[2]].Add(major(t, resp.GetPayout().GetAmount()))
			}
		}
		if in["alice"].IsZero() || out["alice"].IsZero() {
			t.Fatalf("the story has no deposit or no withdrawal for alice: in %v, out %v", in, out)
		}
		// Per account: cash = deposits − withdrawals − cost of the position + realised PnL − fees.
		total := decimal.Zero
		for _, acct := range []string{"alice", "bob", "fees"} {
			a, err := risk.GetAccount(ctx, &riskv1.GetAccountRequest{AccountId: acct})
			if err != nil {
				t.Fatalf("GetAccount %s: %v", acct, err)
			}
			usd := balance(t, a.GetAccount(), "USD")
			total = total.Add(usd)
			if acct == "fees" {
				continue
			}
			want := in[acct].Sub(out[acct])
			for _, p := range a.GetAccount().GetPositions() {
				want = want.Sub(dec(t, p.GetQuantity()).Mul(dec(t, p.GetAveragePrice()))).Add(dec(t, p.GetRealisedPnl())).Sub(dec(t, p.GetFeesPaid()))
			}
			if !usd.Equal(want) {
				t.Errorf("%s holds %s USD; deposits %s − withdrawals %s ± trading − fees make %s", acct, usd, in[acct], out[acct], want)
			}
		}
		// Across accounts (fees included): only payment moves USD in or out.
		flow := in["alice"].Add(in["bob"]).Sub(out["alice"]).Sub(out["bob"])
		if !total.Equal(flow) {
			t.Errorf("risk holds %s USD in all; payment took in and paid out a net %s", total, flow)
		}
		// And payment's ledger balances, per currency.
		bal, err := pay.GetLedgerBalance(ctx, &paymentv1.GetLedgerBalanceRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, tot := range bal.GetTotals() {
			if tot.GetAmount() != 0 {
				t.Errorf("payment's ledger sums to %d %s, not zero", tot.GetAmount(), tot.GetCurrency())
			}
		}
	})
}

func passing(t *testing.T, service string) int {
	resp, err := http.Get("http://127.0.0.1:8500/v1/health/service/" + service + "?passing=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var entries []json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&entries); err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// waitTrace waits until Jaeger has the trace with every "service operation-prefix" wanted.
func waitTrace(t *testing.T, id string, want ...string) {
	t.Helper()
	if id == "" {
		t.Fatal("the demo printed no trace id for this flow")
	}
	var seen map[string]bool
	deadline := time.Now().Add(60 * time.Second)
	for {
		seen = spans(t, id)
		missing := ""
		for _, w := range want {
			found := false
			for s := range seen {
				if strings.HasPrefix(s, w) {
					found = true
				}
			}
			if !found {
				missing = w
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace %s has no span %q after 60s; it has %v", id, missing, keys(seen))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func spans(t *testing.T, id string) map[string]bool {
	resp, err := http.Get(jaegerURL + "/api/traces/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Data []struct {
			Spans []struct {
				OperationName string `json:"operationName"`
				ProcessID     string `json:"processID"`
			} `json:"spans"`
			Processes map[string]struct {
				ServiceName string `json:"serviceName"`
			} `json:"processes"`
		} `json:"data"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	out := map[string]bool{}
	for _, d := range body.Data {
		for _, s := range d.Spans {
			out[d.Processes[s.ProcessID].ServiceName+" "+s.OperationName] = true
		}
	}
	return out
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func dial(t *testing.T, addr, key string) *grpc.ClientConn {
	c, err := client.Dial(addr, client.Options{APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func major(t *testing.T, m *paymentv1.Money) decimal.Decimal {
	if m == nil {
		return decimal.Zero
	}
	return dec(t, money.FormatMinor(m.GetAmount(), m.GetCurrency()))
}

func dec(t *testing.T, s string) decimal.Decimal {
	if s == "" {
		return decimal.Zero
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return d
}

func balance(t *testing.T, a *riskv1.Account, asset string) decimal.Decimal {
	for _, b := range a.GetBalances() {
		if b.GetAssetId() == asset {
			return dec(t, b.GetTotal())
		}
	}
	return decimal.Zero
}
