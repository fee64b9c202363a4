package batching

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

const maxLinks = 32

// span starts a batch execution's span in the trace of its first traced request, linked to the
// others: one execution serves many requests, and each request's trace should lead to it.
func span(jobs []*job, rows int64) (context.Context, trace.Span) {
	ctx := context.Background()
	var links []trace.Link
	for _, j := range jobs {
		sc := trace.SpanContextFromContext(j.ctx)
		if !sc.IsValid() {
			continue
		}
		if !trace.SpanContextFromContext(ctx).IsValid() {
			ctx = trace.ContextWithSpanContext(ctx, sc)
		} else if len(links) < maxLinks {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	return otel.Tracer("bourse/inference").Start(ctx, "batch execute", trace.WithLinks(links...),
		trace.WithAttributes(attribute.Int("requests", len(jobs)), attribute.Int64("rows", rows)))
}
