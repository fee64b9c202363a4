package discovery_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"

	discoveryv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/discovery/v1"
	"github.com/bourse-dev/bourse/pkg/telemetry"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// A call from this test process to a discovery process is one trace in Jaeger: the server span of
// the discovery process is the child of this process's client span.
func TestTracePropagatesAcrossProcesses(t *testing.T) {
	agent := testenv.StartConsul(t)
	jaeger := testenv.StartJaeger(t)
	otlpEnv := "OTEL_EXPORTER_OTLP_ENDPOINT=" + jaeger.OTLPEndpoint
	proc := startDiscovery(t, agent, []string{otlpEnv, "OTEL_BSP_SCHEDULE_DELAY=200"})

	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", jaeger.OTLPEndpoint)
	shutdown, err := telemetry.Setup(context.Background(), "discovery-test-client", "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, root := otel.Tracer("test").Start(context.Background(), "test-root")
	traceID := root.SpanContext().TraceID().String()
	cli := dial(t, proc.GRPCAddr, adminKey)
	if _, err := cli.Register(ctx, &discoveryv1.RegisterRequest{Name: "traced", Address: "127.0.0.1", Port: 1,
		Check: &discoveryv1.HealthCheck{Kind: discoveryv1.CheckKind_CHECK_KIND_NONE}}); err != nil {
		t.Fatal(err)
	}
	root.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	const method = "bourse.discovery.v1.DiscoveryService/Register"
	var spans []testenv.Span
	waited := testenv.WaitFor(t, 30*time.Second, "client and server spans in jaeger", func() bool {
		spans = jaeger.Trace(t, traceID)
		services := map[string]bool{}
		for _, s := range spans {
			services[s.Service] = true
		}
		return services["discovery"] && services["discovery-test-client"] && len(spans) >= 4
	})
	t.Logf("trace complete in jaeger %v after the call", waited)
	var client, server, consulSpan *testenv.Span
	for i := range spans {
		s := &spans[i]
		if s.TraceID != traceID {
			t.Fatalf("span %s has trace %s, want %s", s.OperationName, s.TraceID, traceID)
		}
		if s.OperationName == method && s.Service == "discovery-test-client" {
			client = s
		}
		if s.OperationName == method && s.Service == "discovery" {
			server = s
		}
		if s.OperationName == "consul register" && s.Service == "discovery" {
			consulSpan = s
		}
	}
	if client == nil || server == nil {
		t.Fatalf("want client and server spans named %s, got %+v", method, spans)
	}
	if !childOf(server, client) {
		t.Fatalf("server span references %+v, want CHILD_OF client span %s", server.References, client.SpanID)
	}
	if consulSpan == nil || !childOf(consulSpan, server) {
		t.Fatalf("want a consul query span under the server span, got %+v", spans)
	}
}

func childOf(child, parent *testenv.Span) bool {
	for _, ref := range child.References {
		if ref.RefType == "CHILD_OF" && ref.SpanID == parent.SpanID {
			return true
		}
	}
	return false
}

// The runtime serves Prometheus metrics, with per-method RPC counts.
func TestMetricsEndpoint(t *testing.T) {
	agent := testenv.StartConsul(t)
	proc := startDiscovery(t, agent, nil)
	cli := dial(t, proc.GRPCAddr, serviceKey)
	for range 3 {
		if _, err := cli.Discover(ctxTimeout(t, 5*time.Second), &discoveryv1.DiscoverRequest{Name: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Get("http://" + proc.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	want := fmt.Sprintf(`grpc_server_handled_total{grpc_code="OK",grpc_method="Discover",grpc_service="bourse.discovery.v1.DiscoveryService"} %d`, 3)
	if !strings.Contains(string(body), want) {
		t.Fatalf("metrics lack %q:\n%.2000s", want, body)
	}
}
