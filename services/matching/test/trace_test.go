package matching_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel"

	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
	"github.com/bourse-dev/bourse/pkg/telemetry"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// One order is one trace: the client's span, matching's SubmitOrder, the batched risk check and
// risk's CheckOrders server span, across three processes.
func TestOrderTraceCrossesMatchingAndRisk(t *testing.T) {
	jaeger := testenv.StartJaeger(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", jaeger.OTLPEndpoint)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "200") // inherited by the service processes
	// Set up tracing before dialling: the clients' handlers take the tracer provider at dial time.
	shutdown, err := telemetry.Setup(context.Background(), "matching-test-client", "test")
	if err != nil {
		t.Fatal(err)
	}
	p := startPlatform(t)
	p.addSymbol(t)
	ctx, root := otel.Tracer("test").Start(context.Background(), "place order")
	traceID := root.SpanContext().TraceID().String()
	must(t)(p.alice.SubmitOrder(ctx, limitOrder("alice", "traced", buy, "40000", "0.01")))
	root.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	var spans []testenv.Span
	defer func() {
		if t.Failed() {
			t.Logf("spans seen: %+v", spans)
		}
	}()
	testenv.WaitFor(t, 30*time.Second, "the order's spans from three processes", func() bool {
		spans = jaeger.Trace(t, traceID)
		seen := map[string]bool{}
		for _, s := range spans {
			seen[s.Service+" "+s.OperationName] = true
		}
		return seen["matching-test-client "+matchingv1.MatchingService_SubmitOrder_FullMethodName[1:]] &&
			seen["matching "+matchingv1.MatchingService_SubmitOrder_FullMethodName[1:]] &&
			seen["matching risk check batch"] &&
			seen["risk bourse.risk.v1.RiskService/CheckOrders"]
	})
	byID := map[string]*testenv.Span{}
	for i := range spans {
		byID[spans[i].SpanID] = &spans[i]
	}
	// risk's server span descends from matching's server span.
	for _, s := range spans {
		if s.Service != "risk" || s.OperationName != "bourse.risk.v1.RiskService/CheckOrders" {
			continue
		}
		for cur := &s; cur != nil; {
			if cur.Service == "matching" && cur.OperationName == matchingv1.MatchingService_SubmitOrder_FullMethodName[1:] {
				return
			}
			var parent *testenv.Span
			for _, r := range cur.References {
				if r.RefType == "CHILD_OF" {
					parent = byID[r.SpanID]
				}
			}
			cur = parent
		}
	}
	t.Fatalf("risk's CheckOrders span does not descend from matching's SubmitOrder: %+v", spans)
}
