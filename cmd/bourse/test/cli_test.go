// Package cli_test runs the bourse command line against real processes: Consul, risk and matching.
package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/cmd/bourse/internal/cli"
	"github.com/bourse-dev/bourse/pkg/client"
	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

const (
	adminKey = "admin-key"
	aliceKey = "alice-key"
	bobKey   = "bob-key"
	riskKey  = "matching-risk-key"
	apiKeys  = adminKey + "=admin:ops," + aliceKey + "=account:alice," + bobKey + "=account:bob," + riskKey + "=service:matching"
)

type platform struct {
	consul   string
	matching string
}

func startPlatform(t *testing.T) platform {
	t.Helper()
	agent := testenv.StartConsul(t)
	riskProc := testenv.StartService(t, testenv.Build(t, "github.com/bourse-dev/bourse/services/risk/cmd/risk"), nil,
		"--consul-addr="+agent.Addr, "--api-keys="+apiKeys, "--check-interval=1s", "--data-dir="+filepath.Join(t.TempDir(), "risk"))
	conn, err := client.Dial(riskProc.GRPCAddr, client.Options{APIKey: adminKey})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rc := riskv1.NewRiskServiceClient(conn)
	ctx := context.Background()
	for _, a := range []string{"USD", "BTC"} {
		must(t)(rc.DefineAsset(ctx, &riskv1.DefineAssetRequest{Asset: &riskv1.Asset{AssetId: a, Scale: 8}}))
	}
	must(t)(rc.DefineSymbol(ctx, &riskv1.DefineSymbolRequest{Symbol: &riskv1.Symbol{
		Symbol: "BTC-USD", BaseAsset: "BTC", QuoteAsset: "USD", PriceScale: 2, QtyScale: 4, TakerFeeRate: "0.001"}}))
	for _, acct := range []string{"alice", "bob"} {
		must(t)(rc.OpenAccount(ctx, &riskv1.OpenAccountRequest{AccountId: acct}))
	}
	must(t)(rc.Credit(ctx, &riskv1.CreditRequest{AccountId: "alice", AssetId: "USD", Amount: "1000000", Ref: "dep-alice"}))
	must(t)(rc.Credit(ctx, &riskv1.CreditRequest{AccountId: "bob", AssetId: "BTC", Amount: "10", Ref: "dep-bob"}))
	testenv.WaitFor(t, 20*time.Second, "risk passing", func() bool { return len(agent.Passing(t, "risk")) == 1 })
	m := testenv.StartService(t, testenv.Build(t, "github.com/bourse-dev/bourse/services/matching/cmd/matching"), nil,
		"--consul-addr="+agent.Addr, "--api-keys="+apiKeys, "--check-interval=1s", "--risk-addr=consul:///risk",
		"--risk-api-key="+riskKey, "--data-dir="+filepath.Join(t.TempDir(), "matching"))
	mc, err := client.Dial(m.GRPCAddr, client.Options{APIKey: adminKey})
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	must(t)(matchingv1.NewMatchingServiceClient(mc).AddSymbol(ctx, &matchingv1.AddSymbolRequest{Symbol: &matchingv1.Symbol{
		Symbol: "BTC-USD", TickSize: "0.5", LotSize: "0.001", MinQuantity: "0.001", MaxQuantity: "100"}}))
	testenv.WaitFor(t, 20*time.Second, "matching passing", func() bool { return len(agent.Passing(t, "matching")) == 1 })
	return platform{consul: agent.Addr, matching: m.GRPCAddr}
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

// run calls the command line in process and returns its exit code, stdout and stderr.
func (p platform) run(key string, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := cli.Main(append([]string{"--consul", p.consul, "--api-key", key, "--timeout", "20s"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestTradingThroughTheCLI(t *testing.T) {
	p := startPlatform(t)

	code, out, errOut := p.run(adminKey, "status")
	if code != cli.ExitUnreachable || !strings.Contains(errOut, "no passing instance") {
		t.Errorf("status with discovery and inference down: exit %d (want %d), stderr %q", code, cli.ExitUnreachable, errOut)
	}
	for _, want := range []string{"risk", "matching", "passing", "discovery", "not running"} {
		if !strings.Contains(out, want) {
			t.Errorf("status does not show %q:\n%s", want, out)
		}
	}

	if code, out, errOut = p.run(bobKey, "order", "sell", "BTC-USD", "0.5", "--price", "50000", "--account", "bob", "--client-order-id", "ask-1"); code != 0 {
		t.Fatalf("sell: exit %d: %s%s", code, out, errOut)
	}
	code, out, errOut = p.run(aliceKey, "-o", "json", "order", "buy", "BTC-USD", "0.2", "--price", "50100", "--account", "alice")
	if code != 0 {
		t.Fatalf("buy: exit %d: %s%s", code, out, errOut)
	}
	var bought struct {
		Order struct{ Status, FilledQuantity string } `json:"order"`
		Fills []struct{ Price, Quantity string }      `json:"fills"`
	}
	if err := json.Unmarshal([]byte(out), &bought); err != nil {
		t.Fatalf("buy -o json is not JSON: %v\n%s", err, out)
	}
	if bought.Order.Status != "ORDER_STATUS_FILLED" || len(bought.Fills) != 1 || bought.Fills[0].Price != "50000" {
		t.Errorf("buy answered %+v", bought)
	}

	// Matching settles a trade with risk on its own stream, after the order's answer: the position
	// shows once risk has applied it.
	for deadline := time.Now().Add(15 * time.Second); ; {
		code, out, _ = p.run(aliceKey, "account", "alice")
		if code == 0 && positionOf(out, "BTC-USD") == "0.2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("account: exit %d, no BTC-USD position of 0.2:\n%s", code, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	code, out, _ = p.run(aliceKey, "book", "BTC-USD")
	if code != 0 || !strings.Contains(out, "ask") || !strings.Contains(out, "50000") || !strings.Contains(out, "0.3") {
		t.Errorf("book: exit %d:\n%s", code, out)
	}
	code, out, _ = p.run(bobKey, "-o", "yaml", "order", "get", "BTC-USD", "--client-order-id", "ask-1", "--account", "bob")
	if code != 0 || !strings.Contains(out, "remaining_quantity: \"0.3\"") {
		t.Errorf("order get -o yaml: exit %d:\n%s", code, out)
	}
	if code, out, errOut = p.run(bobKey, "order", "cancel", "BTC-USD", "--client-order-id", "ask-1", "--account", "bob"); code != 0 || !strings.Contains(out, "cancelled") {
		t.Errorf("cancel: exit %d:\n%s%s", code, out, errOut)
	}

	// Limits and the kill switch (admin), and what they do to an order.
	if code, out, errOut = p.run(adminKey, "limits", "alice", "--set", "max_order_notional=60000", "--set", "order_rate_per_second=100", "--set", "order_rate_burst=200"); code != 0 ||
		!strings.Contains(out, "60000") || !strings.Contains(out, "100") {
		t.Errorf("limits --set: exit %d:\n%s%s", code, out, errOut)
	}
	if code, _, errOut = p.run(aliceKey, "limits", "alice", "--set", "max_position=9"); code != cli.ExitAuth {
		t.Errorf("limits --set with a customer key: exit %d (%s), want %d", code, errOut, cli.ExitAuth)
	}
	if code, _, errOut = p.run(adminKey, "limits", "alice", "--set", "max_positon=1"); code != cli.ExitUsage || !strings.Contains(errOut, "max_position") {
		t.Errorf("limits --set with a misspelt name: exit %d (%s)", code, errOut)
	}
	if code, _, errOut = p.run(adminKey, "halt", "alice"); code != 0 {
		t.Fatalf("halt: exit %d (%s)", code, errOut)
	}
	if code, _, errOut = p.run(aliceKey, "order", "buy", "BTC-USD", "0.01", "--price", "40000", "--account", "alice"); code != cli.ExitFailed ||
		!strings.Contains(errOut, "order rejected: risk") {
		t.Errorf("an order of a halted account: exit %d (%s)", code, errOut)
	}
	if code, _, errOut = p.run(adminKey, "resume", "alice"); code != 0 {
		t.Fatalf("resume: exit %d (%s)", code, errOut)
	}
	if code, out, errOut = p.run(aliceKey, "order", "buy", "BTC-USD", "0.01", "--price", "40000", "--account", "alice"); code != 0 {
		t.Errorf("an order after resume: exit %d: %s%s", code, out, errOut)
	}

	// The load generator: every command answered, the book left as it was.
	code, out, errOut = p.run(adminKey, "-o", "json", "bench", "orders", "--orders", "2000", "--streams", "2", "--window", "100", "--bid", "30000")
	var bench struct {
		Commands, Refused float64
		P99Us             float64 `json:"p99_us"`
	}
	if err := json.Unmarshal([]byte(out), &bench); code != 0 || err != nil || bench.Commands != 2000 || bench.Refused != 0 || bench.P99Us <= 0 {
		t.Errorf("bench orders: exit %d, %+v (%v):\n%s%s", code, bench, err, out, errOut)
	}
	if !strings.Contains(errOut, "100%") {
		t.Errorf("bench orders: the progress bar did not end at 100%%: %q", errOut)
	}
	code, out, _ = p.run(aliceKey, "-o", "json", "book", "BTC-USD")
	if code != 0 || strings.Contains(out, `"29`) || strings.Contains(out, `"31`) {
		t.Errorf("bench orders left orders in the book:\n%s", out)
	}
}

func TestCLIErrorsAreOneLineWithAnExitCode(t *testing.T) {
	p := startPlatform(t)
	cases := []struct {
		name string
		key  string
		args []string
		code int
		want string
	}{
		{"malformed decimal", aliceKey, []string{"order", "buy", "BTC-USD", "0.1", "--price", "5o000", "--account", "alice"}, cli.ExitUsage, `--price "5o000" is not a decimal number`},
		{"price off the tick (server)", aliceKey, []string{"order", "buy", "BTC-USD", "0.1", "--price", "50000.3", "--account", "alice"}, cli.ExitUsage, "price"},
		{"unknown symbol", aliceKey, []string{"order", "buy", "DOGE-USD", "1", "--price", "1", "--account", "alice"}, cli.ExitNotFound, "DOGE-USD"},
		{"unknown key", "nobody", []string{"account", "alice"}, cli.ExitAuth, "BOURSE_API_KEY"},
		{"another account", bobKey, []string{"account", "alice"}, cli.ExitAuth, "not allowed"},
		{"unknown command", aliceKey, []string{"ordr"}, cli.ExitUsage, "Did you mean this?"},
		{"bad side", aliceKey, []string{"order", "short", "BTC-USD", "1"}, cli.ExitUsage, "unknown command"},
		{"service down", aliceKey, []string{"--addr", "matching=127.0.0.1:1", "symbols"}, cli.ExitUnreachable, "127.0.0.1:1"},
	}
	for _, c := range cases {
		code, _, errOut := p.run(c.key, c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d (want %d), stderr %q (want it to contain %q)", c.name, code, c.code, errOut, c.want)
		}
		if line := strings.TrimSpace(errOut); c.code != cli.ExitUsage && strings.Count(line, "\n") > 0 {
			t.Errorf("%s: error is more than one line: %q", c.name, errOut)
		}
	}
}

// TestBookWatchStreamsUntilCtrlC runs the real binary: the watch prints updates as they happen and
// an interrupt ends it with exit code 0.
func TestBookWatchStreamsUntilCtrlC(t *testing.T) {
	p := startPlatform(t)
	bin := testenv.Build(t, "github.com/bourse-dev/bourse/cmd/bourse")
	cmd := exec.Command(bin, "--consul", p.consul, "--api-key", aliceKey, "-o", "json", "book", "BTC-USD", "--watch")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func(what string) string {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the watch ended before %s", what)
			}
			return l
		case <-time.After(20 * time.Second):
			t.Fatalf("no %s within 20s", what)
		}
		return ""
	}
	if first := next("snapshot"); !strings.Contains(first, `"snapshot"`) {
		t.Fatalf("first update is not the snapshot: %s", first)
	}
	if code, out, errOut := p.run(bobKey, "order", "sell", "BTC-USD", "0.25", "--price", "51000", "--account", "bob"); code != 0 {
		t.Fatalf("sell: %d %s%s", code, out, errOut)
	}
	if delta := next("delta"); !strings.Contains(delta, `"51000"`) || !strings.Contains(delta, `"0.25"`) {
		t.Errorf("the delta does not show the new level: %s", delta)
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Ctrl-C: %v (want exit 0)", err)
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("the watch did not end on Ctrl-C")
	}
}

// An operator opens a market and funds an account from the CLI; then it trades.
func TestOpeningAMarketFromTheCLI(t *testing.T) {
	p := startPlatform(t)
	steps := [][]string{
		{"symbols", "add", "ETH-USD", "--tick", "0.05", "--lot", "0.01", "--reference-price", "3000"},
		{"symbols", "add", "ETH-USD", "--tick", "0.05", "--lot", "0.01", "--reference-price", "3000"}, // the same again: idempotent
		{"symbols", "add", "ETH-USD", "--tick", "0.1", "--lot", "0.01", "--reference-price", "3000"},  // another tick: refused
		{"accounts", "open", "bob", "alice"},
		{"accounts", "credit", "bob", "ETH", "5", "--ref", "eth-bob-1"},
	}
	for i, args := range steps {
		code, out, errOut := p.run(adminKey, args...)
		if i == 2 {
			if code == 0 {
				t.Errorf("redefining a market with another tick: exit 0 (%s%s)", out, errOut)
			}
			continue
		}
		if code != 0 {
			t.Fatalf("%v: exit %d: %s%s", args, code, out, errOut)
		}
	}
	code, out, _ := p.run(adminKey, "-o", "json", "accounts", "credit", "bob", "ETH", "5", "--ref", "eth-bob-1")
	if code != 0 || !strings.Contains(out, `"duplicate": true`) {
		t.Errorf("the same credit again: exit %d, %s (want a duplicate)", code, out)
	}
	if code, out, _ = p.run(aliceKey, "symbols"); code != 0 || !strings.Contains(out, "ETH-USD") || !strings.Contains(out, "0.05") {
		t.Errorf("symbols: exit %d:\n%s", code, out)
	}
	if code, out, errOut := p.run(bobKey, "order", "sell", "ETH-USD", "1.5", "--price", "3000.05", "--account", "bob"); code != 0 {
		t.Fatalf("sell ETH: exit %d: %s%s", code, out, errOut)
	}
	code, out, _ = p.run(bobKey, "account", "bob")
	if code != 0 || !strings.Contains(out, "ETH") || !strings.Contains(out, "1.5") {
		t.Errorf("bob's ETH is not reserved for his order:\n%s", out)
	}
	if code, _, errOut := p.run(aliceKey, "symbols", "add", "XRP-USD"); code != cli.ExitAuth {
		t.Errorf("a customer adding a market: exit %d (%s)", code, errOut)
	}
}

// listedOrders is what `bourse order list -o json` prints, parsed.
type listedOrders struct {
	Orders []struct {
		OrderID           string `json:"order_id"`
		ClientOrderID     string `json:"client_order_id"`
		Symbol            string
		Status            string
		RemainingQuantity string `json:"remaining_quantity"`
	}
	NextPageToken string `json:"next_page_token"`
}

func (p platform) listOrders(t *testing.T, key string, args ...string) listedOrders {
	t.Helper()
	code, out, errOut := p.run(key, append([]string{"-o", "json", "order", "list"}, args...)...)
	var l listedOrders
	if err := json.Unmarshal([]byte(out), &l); code != 0 || err != nil {
		t.Fatalf("order list %v: exit %d, %v:\n%s%s", args, code, err, out, errOut)
	}
	return l
}

func clientIDs(l listedOrders) []string {
	var ids []string
	for _, o := range l.Orders {
		ids = append(ids, o.ClientOrderID)
	}
	return ids
}

// A placed order shows in `order list`, a cancelled one does not; pages follow with --all.
func TestOrderListThroughTheCLI(t *testing.T) {
	p := startPlatform(t)
	for i, price := range []string{"60000", "60500", "61000"} {
		cid := "ask-" + string(rune('a'+i))
		if code, out, errOut := p.run(bobKey, "order", "sell", "BTC-USD", "0.1", "--price", price, "--account", "bob", "--client-order-id", cid); code != 0 {
			t.Fatalf("sell %s: exit %d: %s%s", cid, code, out, errOut)
		}
	}
	if got := strings.Join(clientIDs(p.listOrders(t, bobKey, "--account", "bob")), ","); got != "ask-a,ask-b,ask-c" {
		t.Fatalf("bob's open orders before the cancel: %s", got)
	}
	if code, out, errOut := p.run(bobKey, "order", "cancel", "BTC-USD", "--client-order-id", "ask-b", "--account", "bob"); code != 0 {
		t.Fatalf("cancel: exit %d: %s%s", code, out, errOut)
	}
	l := p.listOrders(t, bobKey, "--account", "bob", "--symbol", "BTC-USD")
	if got := strings.Join(clientIDs(l), ","); got != "ask-a,ask-c" || l.NextPageToken != "" {
		t.Fatalf("bob's open orders after cancelling ask-b: %s (next %q)", got, l.NextPageToken)
	}
	for _, o := range l.Orders {
		if o.Symbol != "BTC-USD" || o.Status != "ORDER_STATUS_NEW" || o.RemainingQuantity != "0.1" || o.OrderID == "" {
			t.Errorf("listed order %+v", o)
		}
	}

	// One page of one, then every page.
	first := p.listOrders(t, bobKey, "--account", "bob", "--page-size", "1")
	if got := strings.Join(clientIDs(first), ","); got != "ask-a" || first.NextPageToken == "" {
		t.Fatalf("first page of one: %s (next %q)", got, first.NextPageToken)
	}
	second := p.listOrders(t, bobKey, "--account", "bob", "--page-size", "1", "--page-token", first.NextPageToken)
	if got := strings.Join(clientIDs(second), ","); got != "ask-c" {
		t.Errorf("second page of one: %s", got)
	}
	all := p.listOrders(t, bobKey, "--account", "bob", "--page-size", "1", "--all")
	if got := strings.Join(clientIDs(all), ","); got != "ask-a,ask-c" || all.NextPageToken != "" {
		t.Errorf("--all with pages of one: %s (next %q)", got, all.NextPageToken)
	}

	// The table, and the hint that more pages follow.
	code, out, errOut := p.run(bobKey, "order", "list", "--account", "bob", "--page-size", "1")
	if code != 0 || !strings.Contains(out, "CLIENT ID") || !strings.Contains(out, "ask-a") || strings.Contains(out, "ask-c") ||
		!strings.Contains(errOut, "--page-token "+first.NextPageToken) {
		t.Errorf("order list table: exit %d:\n%s%s", code, out, errOut)
	}
	// Alice's key may not list bob's orders; alice has none open.
	if code, _, errOut = p.run(aliceKey, "order", "list", "--account", "bob"); code != cli.ExitAuth {
		t.Errorf("alice listing bob: exit %d (%s), want %d", code, errOut, cli.ExitAuth)
	}
	if l := p.listOrders(t, aliceKey, "--account", "alice"); len(l.Orders) != 0 {
		t.Errorf("alice's open orders: %s", clientIDs(l))
	}
	if code, _, errOut = p.run(bobKey, "order", "list", "--account", "bob", "--page-token", "garbage!"); code != cli.ExitUsage || !strings.Contains(errOut, "page_token") {
		t.Errorf("a bad page token: exit %d (%s), want %d", code, errOut, cli.ExitUsage)
	}
}

// positionOf is the POSITION column of symbol's row in `bourse account`'s table ("" if none).
func positionOf(table, symbol string) string {
	for line := range strings.Lines(table) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == symbol {
			return f[1]
		}
	}
	return ""
}
