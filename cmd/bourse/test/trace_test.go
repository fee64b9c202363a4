package cli_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/cmd/bourse/internal/cli"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// serviceRow finds a waterfall row whose service column is matching's (the server span, not the
// CLI's client span that names the method).
var serviceRow = regexp.MustCompile(`(?m)^matching\s`)

// An order placed with --trace is one trace from the CLI through matching to risk, which `bourse
// trace` draws and `bourse traces` lists.
func TestTraceOfAnOrderFromTheCLI(t *testing.T) {
	jaeger := testenv.StartJaeger(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", jaeger.OTLPEndpoint)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
	p := startPlatform(t)

	code, out, errOut := p.run(aliceKey, "--trace", "order", "buy", "BTC-USD", "0.01", "--price", "40000", "--account", "alice")
	if code != 0 {
		t.Fatalf("buy: exit %d: %s%s", code, out, errOut)
	}
	m := regexp.MustCompile(`trace ([0-9a-f]{32})`).FindStringSubmatch(errOut)
	if m == nil {
		t.Fatalf("--trace printed no trace id: %q", errOut)
	}
	id := m[1]
	var drawn string
	testenv.WaitFor(t, 30*time.Second, "the trace in Jaeger with the CLI, matching and risk", func() bool {
		code, drawn, _ = p.run(aliceKey, "--jaeger", jaeger.QueryURL, "trace", id)
		// Each process exports its spans on its own schedule: wait for a span of each service.
		return code == 0 && strings.Contains(drawn, "bourse-cli") && strings.Contains(drawn, "bourse.risk.v1.RiskService/CheckOrders") &&
			serviceRow.MatchString(drawn)
	})
	t.Logf("bourse trace %s:\n%s", id, drawn)
	lines := strings.Split(drawn, "\n")
	if !strings.HasPrefix(lines[1], "bourse-cli") || !strings.Contains(lines[1], "bourse order buy") {
		t.Errorf("the root of the waterfall is not the CLI's span:\n%s", drawn)
	}
	if !strings.Contains(drawn, "█") || !strings.Contains(drawn, " ok ") {
		t.Errorf("waterfall:\n%s", drawn)
	}

	code, listed, errOut := p.run(aliceKey, "--jaeger", jaeger.QueryURL, "traces", "--service", "bourse-cli", "--last", "5m")
	if code != 0 || !strings.Contains(listed, id) || !strings.Contains(listed, "matching") {
		t.Errorf("traces: exit %d:\n%s%s", code, listed, errOut)
	}
	if code, _, errOut = p.run(aliceKey, "--jaeger", jaeger.QueryURL, "trace", "00000000000000000000000000000001"); code != cli.ExitNotFound {
		t.Errorf("unknown trace: exit %d (%s)", code, errOut)
	}
	if code, _, errOut = p.run(aliceKey, "--jaeger", "http://127.0.0.1:1", "trace", id); code != cli.ExitUnreachable || !strings.Contains(errOut, "127.0.0.1:1") {
		t.Errorf("Jaeger down: exit %d (%s)", code, errOut)
	}
}
