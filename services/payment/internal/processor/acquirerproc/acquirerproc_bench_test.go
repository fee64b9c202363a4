package acquirerproc_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/testenv"
	"github.com/bourse-dev/bourse/services/payment/internal/processor"
)

// BenchmarkAuthorizeThroughTheAcquirer is payment's view of the acquirer process: new durable
// authorizations over gRPC from parallel callers (the acquirer fsyncs each group commit before it
// answers), and replays of one key.
func BenchmarkAuthorizeThroughTheAcquirer(b *testing.B) {
	a := testenv.StartAcquirer(b, testenv.AcquirerOptions{Args: []string{"--rate-limit-service=off", "--log-level=warn"}})
	c := dialTB(b, a.GRPCAddr, 10*time.Second)
	ctx := context.Background()
	var n atomic.Int64
	run := func(b *testing.B, key func() string) {
		b.SetParallelism(32)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				res, err := c.Authorize(ctx, authorize(key(), 100, "tok"))
				if err != nil || res.Status != processor.Approved {
					b.Errorf("authorize: %+v %v", res, err)
					return
				}
			}
		})
	}
	b.Run("new", func(b *testing.B) { run(b, func() string { return fmt.Sprint("k", n.Add(1)) }) })
	b.Run("replay", func(b *testing.B) { run(b, func() string { return "k1" }) })
}
