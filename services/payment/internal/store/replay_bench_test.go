package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/services/payment/internal/idempotency"
)

// BenchmarkFinishedKey is a replay's read: the finished record of a key, outside any write
// transaction, on SQLite's read connections, from 8 × GOMAXPROCS concurrent replays. The caller's
// context is cancellable, as a gRPC request's is.
func BenchmarkFinishedKey(b *testing.B) {
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "payment.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const retention = 24 * time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err = s.InTx(ctx, func(tx *Tx) error {
		if _, _, err := tx.ClaimKey(ctx, idempotency.Record{Caller: "c", Key: "k", Method: "m", Fingerprint: "f",
			State: idempotency.InFlight, ObjectID: "obj"}, retention); err != nil {
			return err
		}
		return tx.CompleteKey(ctx, "c", "k", []byte(`{"id":"obj"}`), nil)
	})
	if err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, found, err := s.FinishedKey(ctx, "c", "k", retention); !found || err != nil {
				b.Errorf("replay: %v %v", found, err)
				return
			}
		}
	})
}
