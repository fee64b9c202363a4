package consul

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

var tracer = otel.Tracer("github.com/bourse-dev/bourse/pkg/consul")

// span starts a client span for a Consul request only inside an existing trace: the resolver's
// background watches would otherwise start a new root trace every few minutes per target.
func span(ctx context.Context, op, service string) (context.Context, func(error)) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, func(error) {}
	}
	ctx, s := tracer.Start(ctx, "consul "+op, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("consul.service", service)))
	return ctx, func(err error) {
		if err != nil {
			s.RecordError(err)
			s.SetStatus(codes.Error, err.Error())
		}
		s.End()
	}
}
