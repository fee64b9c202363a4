package exchange

import (
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func spanContext(n int) trace.SpanContext {
	var tid trace.TraceID
	var sid trace.SpanID
	tid[0], tid[1], sid[0], sid[1] = 1, byte(n), byte(n>>8)+1, byte(n)
	tid[2] = byte(n >> 8)
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
}

// TestSettleSpanLinksCapped: a part links each traced command once (its items are adjacent), skips
// untraced items, stops at maxSettleLinks and counts the rest.
func TestSettleSpanLinksCapped(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	defer otel.SetTracerProvider(prev)

	const commands = maxSettleLinks + 7
	var items []SettleItem
	for i := range commands {
		part := make([]SettleItem, 3) // a trade and two releases of one command
		stampTrace(part, spanContext(i))
		items = append(items, part...)
		items = append(items, SettleItem{}) // an untraced item (an expiry, or replayed)
	}
	_, span := settleSpan(&SettleBatch{Stream: Stream{Shard: 2}, After: 4, Through: 9, Items: items})
	span.End()
	_, probe := settleSpan(&SettleBatch{})
	probe.End()

	ended := rec.Ended()
	if len(ended) != 1 {
		t.Fatalf("want one settle span (a probe has none), got %d", len(ended))
	}
	s := ended[0]
	if len(s.Links()) != maxSettleLinks {
		t.Fatalf("links: %d, want %d", len(s.Links()), maxSettleLinks)
	}
	for i, l := range s.Links() {
		if l.SpanContext.TraceID() != spanContext(i).TraceID() || l.SpanContext.SpanID() != spanContext(i).SpanID() {
			t.Fatalf("link %d: %v, want command %d's span", i, l.SpanContext, i)
		}
	}
	attrs := map[attribute.Key]attribute.Value{}
	for _, a := range s.Attributes() {
		attrs[a.Key] = a.Value
	}
	if attrs["links_dropped"].AsInt64() != commands-maxSettleLinks || attrs["items"].AsInt64() != int64(len(items)) {
		t.Fatalf("attributes: %v", s.Attributes())
	}
	if s.Parent().IsValid() {
		t.Fatalf("a settle span starts its own trace, got parent %v", s.Parent())
	}
}
