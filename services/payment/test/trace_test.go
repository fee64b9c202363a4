package payment_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel"

	acquirerv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/acquirer/v1"
	paymentv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/payment/v1"
	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
	"github.com/bourse-dev/bourse/pkg/telemetry"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// One deposit is one trace across payment, the acquirer and risk: the outbox carries the request's
// trace context to the later Credit.
func TestDepositTraceCrossesAcquirerAndRisk(t *testing.T) {
	jaeger := testenv.StartJaeger(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", jaeger.OTLPEndpoint)
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "200") // inherited by the service processes
	shutdown, err := telemetry.Setup(context.Background(), "payment-test-client", "test")
	if err != nil {
		t.Fatal(err)
	}
	s := startStack(t, sqliteArg(t))
	p := s.startPayment(t)
	ctx, root := otel.Tracer("test").Start(context.Background(), "deposit")
	traceID := root.SpanContext().TraceID().String()
	if _, err := p.alice.CreatePayment(ctx, deposit("alice", 700, "traced")); err != nil {
		t.Fatal(err)
	}
	root.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	var spans []testenv.Span
	testenv.WaitFor(t, 30*time.Second, "the deposit's spans from payment, the acquirer and risk", func() bool {
		spans = jaeger.Trace(t, traceID)
		seen := map[string]bool{}
		for _, sp := range spans {
			seen[sp.Service+" "+sp.OperationName] = true
		}
		return seen["payment "+paymentv1.PaymentService_CreatePayment_FullMethodName[1:]] &&
			seen["acquirer "+acquirerv1.AcquirerService_Authorize_FullMethodName[1:]] &&
			seen["risk "+riskv1.RiskService_Credit_FullMethodName[1:]]
	})
}
