package batching

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// A batch's execution span sits in the trace of one of its requests and links to the others, so
// every request's trace leads to the execution that served it.
func TestBatchSpanLinksEveryRequest(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	d := &doubling{gate: make(chan struct{}), entered: make(chan struct{}, 8)}
	b := New(Config{MaxBatchSize: 8, MaxQueueDelay: time.Second, MaxQueueSize: 8}, d.exec)
	defer b.Close()
	tracer := tp.Tracer("test")
	go func() { _, _ = b.Submit(context.Background(), input(0), 1) }() // holds the instance
	<-d.entered
	var wg sync.WaitGroup
	traces := map[string]bool{}
	for i := range 3 {
		ctx, sp := tracer.Start(context.Background(), "request")
		traces[sp.SpanContext().TraceID().String()] = true
		wg.Go(func() {
			defer sp.End()
			if _, err := b.Submit(ctx, input(int32(i)), 1); err != nil {
				t.Error(err)
			}
		})
	}
	for b.waiting.Load() < 3 {
		time.Sleep(time.Millisecond)
	}
	close(d.gate)
	wg.Wait()
	var batch sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "batch execute" && traces[s.SpanContext().TraceID().String()] {
			batch = s
		}
	}
	if batch == nil {
		t.Fatal("no batch span in any request's trace")
	}
	seen := map[string]bool{batch.SpanContext().TraceID().String(): true}
	for _, l := range batch.Links() {
		seen[l.SpanContext.TraceID().String()] = true
	}
	for id := range traces {
		if !seen[id] {
			t.Fatalf("request trace %s neither holds nor is linked from the batch span", id)
		}
	}
}
