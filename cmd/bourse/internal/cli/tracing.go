package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/bourse-dev/bourse/pkg/telemetry"
)

// startTracing makes the command one trace, rooted in a client span named after it, when --trace is
// given (exporting to make run's Jaeger unless OTEL_EXPORTER_OTLP_ENDPOINT says otherwise) or the
// OTLP variables are set. It must run before any connection is dialled: the clients' handlers take
// the tracer provider at dial time.
func (g *globals) startTracing(cmd *cobra.Command) error {
	if !g.trace && !telemetry.Exporting() {
		return nil
	}
	if !telemetry.Exporting() {
		os.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
	}
	host, _ := os.Hostname()
	shutdown, err := telemetry.Setup(cmd.Context(), "bourse-cli", host)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	ctx, span := otel.Tracer("bourse-cli").Start(cmd.Context(), cmd.CommandPath(), trace.WithSpanKind(trace.SpanKindClient))
	cmd.SetContext(ctx)
	g.endTrace = func() {
		span.End()
		flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = shutdown(flushCtx)
		if g.trace {
			id := span.SpanContext().TraceID().String()
			fmt.Fprintf(g.errOut, "trace %s   (bourse trace %s)\n", id, id)
		}
	}
	return nil
}
