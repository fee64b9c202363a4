package repository

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bourse-dev/bourse/services/inference/internal/backend"
	"github.com/bourse-dev/bourse/services/inference/internal/metrics"
	"github.com/bourse-dev/bourse/services/inference/internal/testutil"
)

// BenchmarkInProcess is the in-process ceiling for the served figures of scripts/bench-inference.sh:
// single-row iris requests from c concurrent callers straight into the repository (validation,
// batching, onnxruntime, metrics), with dynamic batching (model iris) and without (iris_nobatch)
// at the same concurrencies, so each batched row has its unbatched row to compare with.
func BenchmarkInProcess(b *testing.B) {
	repo := testutil.CopyRepo(b, "iris")
	testutil.AddUnbatched(b, repo, "iris", "iris_nobatch")
	m, err := New(Options{Root: repo, Backends: []backend.Backend{testutil.ORT(b)}, Metrics: metrics.New(prometheus.NewRegistry())})
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	for _, model := range []string{"iris", "iris_nobatch"} {
		for _, c := range []int{1, 8, 32, 128} {
			b.Run(fmt.Sprintf("model=%s/c=%d", model, c), func(b *testing.B) {
				req := irisRequest("", testutil.IrisRows[0])
				req.Model = model
				var left atomic.Int64
				left.Store(int64(b.N))
				var failed atomic.Int64
				var wg sync.WaitGroup
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				for range c {
					wg.Go(func() {
						for left.Add(-1) >= 0 {
							if _, err := m.Infer(context.Background(), req); err != nil {
								failed.Add(1)
							}
						}
					})
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
				if failed.Load() > 0 {
					b.Fatalf("%d requests failed", failed.Load())
				}
			})
		}
	}
}
