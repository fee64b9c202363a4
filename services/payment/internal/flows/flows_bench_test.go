package flows

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
)

// CreatePayment in process (instant processor, SQLite with group commit): the flow's own cost,
// without gRPC.
func BenchmarkCreatePaymentInProcess(b *testing.B) {
	e := newEnv(b)
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := e.svc.CreatePayment(context.Background(), "account:alice", fmt.Sprint("k", n.Add(1)), deposit(100, "tok")); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "payments/s")
}
