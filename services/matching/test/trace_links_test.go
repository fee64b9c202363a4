package matching_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"go.opentelemetry.io/otel"

	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
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
// and its span links to the trace of the order command whose items it settles: the crossing order's
// trade, and a cancel's release.
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
	// A cancel's release is settled too, and links to the cancel's trace.
	must(t)(p.alice.SubmitOrder(ctx, limitOrder("alice", "rest", buy, "39000", "0.01")))
	cctx, croot := otel.Tracer("test").Start(ctx, "cancel")
	cancelID := croot.SpanContext().TraceID().String()
	must(t)(p.alice.CancelOrder(cctx, &matchingv1.CancelOrderRequest{AccountId: "alice", Symbol: "BTC-USD", ClientOrderId: "rest"}))
	croot.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	var seen []testenv.Span
	testenv.WaitFor(t, 30*time.Second, "settle spans linked to the crossing order's and the cancel's traces", func() bool {
		seen = settleSpans(t, jaeger)
		linked := map[string]bool{}
		for _, s := range seen {
			if s.TraceID == traceID || s.TraceID == cancelID {
				t.Fatalf("settlement span is inside a request's trace instead of linking to it: %+v", s)
			}
			for _, r := range s.References {
				if r.RefType == "FOLLOWS_FROM" {
					linked[r.TraceID] = true
				}
			}
		}
		return linked[traceID] && linked[cancelID]
	})
}
