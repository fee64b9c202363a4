package exchange

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Settlement runs on the reporter, long after and apart from the requests that caused it, so its
// spans start their own traces and link back to the trace of every order command whose items they
// settle. The command's span context rides with its settlement items in memory only (never in the
// journal), so it is bounded like the items themselves; items replayed after a restart have none.

// maxSettleLinks bounds the links of one settlement span; the rest are counted in an attribute.
const maxSettleLinks = 128

// traceRef is the compact part of a span context a link needs.
type traceRef struct {
	traceID trace.TraceID
	spanID  trace.SpanID
	flags   trace.TraceFlags
}

func (r traceRef) valid() bool { return r.traceID.IsValid() && r.spanID.IsValid() }

// stampTrace marks items as produced by a command traced as sc.
func stampTrace(items []SettleItem, sc trace.SpanContext) {
	if !sc.IsValid() {
		return
	}
	r := traceRef{traceID: sc.TraceID(), spanID: sc.SpanID(), flags: sc.TraceFlags()}
	for i := range items {
		items[i].origin = r
	}
}

// settleSpan starts the span of one Settle part, linked to the commands its items came from.
func settleSpan(b *SettleBatch) (context.Context, trace.Span) {
	ctx := context.Background()
	if len(b.Items) == 0 {
		return ctx, trace.SpanFromContext(ctx) // a probe: nothing to link, not worth a span
	}
	var links []trace.Link
	var last traceRef
	dropped := 0
	for i := range b.Items {
		r := b.Items[i].origin
		if !r.valid() || r == last {
			continue // one command's items are adjacent: link it once
		}
		last = r
		if len(links) == maxSettleLinks {
			dropped++
			continue
		}
		links = append(links, trace.Link{SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: r.traceID, SpanID: r.spanID, TraceFlags: r.flags, Remote: true})})
	}
	return otel.Tracer("bourse/matching").Start(ctx, "settle",
		trace.WithLinks(links...),
		trace.WithAttributes(attribute.Int("shard", int(b.Stream.Shard)), attribute.Int64("after", int64(b.After)),
			attribute.Int64("through", int64(b.Through)), attribute.Int("items", len(b.Items)),
			attribute.Int("links_dropped", dropped)))
}
