package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/bourse-dev/bourse/pkg/testenv"
)

// BenchmarkDepositWrites writes a deposit's two transactions (claim, then capture verdict) from 8 ×
// GOMAXPROCS concurrent requests on SQLite and PostgreSQL: through the lanes; through the general
// path (InTx) of the same store, with group commit on SQLite; and through the general path of a
// store without group commit or lanes.
func BenchmarkDepositWrites(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		for _, mode := range []string{"lanes", "general", "nogroupcommit"} {
			b.Run(backend+"/"+mode, func(b *testing.B) {
				url := filepath.Join(b.TempDir(), "payment.db")
				if backend == "postgres" {
					url = testenv.StartPostgres(b)
				}
				s, err := OpenWith(context.Background(), url, Options{NoGroupCommit: mode == "nogroupcommit"})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				var n atomic.Int64
				b.SetParallelism(8) // 8 × GOMAXPROCS requests at once
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					ctx := context.Background()
					for pb.Next() {
						d := laneDeposit(s, "bench", fmt.Sprint("k", n.Add(1)), 100)
						if mode == "lanes" {
							if ok, err := s.ClaimDeposit(ctx, d); !ok || err != nil {
								b.Errorf("claim: %v %v", ok, err)
								return
							}
							if ok, err := s.ApplyVerdict(ctx, laneVerdict(s, d, true)); !ok || err != nil {
								b.Errorf("verdict: %v %v", ok, err)
								return
							}
							continue
						}
						if ok, err := tryClaimGeneral(s, d); !ok || err != nil {
							b.Errorf("claim: %v %v", ok, err)
							return
						}
						if err := settleGeneral(s, laneVerdict(s, d, true)); err != nil {
							b.Errorf("verdict: %v", err)
							return
						}
					}
				})
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deposits/s")
			})
		}
	}
}
