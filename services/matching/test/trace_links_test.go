package matching_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/bourse-dev/bourse/pkg/telemetry"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// settleSpans lists matching's settlement spans Jaeger has stored, with the traces they link to.
func settleSpans(t *testing.T, j *testenv.Jaeger) []testenv.Span {
	t.Helper()
	q := url.Values{"service": {"matching"}, "operation": {"settle"}, "limit": {"200"}, "lookback": {"1h"}}
	resp, err := http.Get(j.QueryURL + "/api/traces?" + q.Encode())
	if err != nil {
		t.Fatalf("jaeger query: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		Data []struct {
			Spans []testenv.Span `json:"spans"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("jaeger query: %v", err)
	}
	var out []testenv.Span
	for _, d := range body.Data {
		for _, s := range d.Spans {
			if s.OperationName == "settle" {
				out = append(out, s)
			}
		}
	}
	return out
}

// TestSettlementLinksToTheOrdersTrace: the reporter's Settle of a trade runs in a trace of its own,
// and its span links to the trace of the order command whose fill it settles — the crossing order
// and, for the release that closing an order causes, the same command.
func TestSettlementLinksToTheOrdersTrace(t *testing.T) {
	jaeger := testenv.StartJaeger(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", jaeger.OTLPEndpoint)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
	shutdown, err := telemetry.Setup(context.Background(), "matching-test-client", "test")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = shutdown(context.Background()) }()
	p := startPlatform(t)
	p.addSymbol(t)
	ctx := context.Background()
	must(t)(p.bob.SubmitOrder(ctx, limitOrder("bob", "rest", sell, "40000", "0.01")))
	tctx, root := otel.Tracer("test").Start(ctx, "cross the book")
	traceID := root.SpanContext().TraceID().String()
	must(t)(p.alice.SubmitOrder(tctx, limitOrder("alice", "cross", buy, "40000", "0.01")))
	root.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	var seen []testenv.Span
	testenv.WaitFor(t, 30*time.Second, "a settle span linked to the crossing order's trace", func() bool {
		seen = settleSpans(t, jaeger)
		for _, s := range seen {
			if s.TraceID == traceID {
				t.Fatalf("settlement span is inside the order's trace instead of linking to it: %+v", s)
			}
			for _, r := range s.References {
				if r.TraceID == traceID && r.RefType == "FOLLOWS_FROM" {
					return true
				}
			}
		}
		return false
	})
}
