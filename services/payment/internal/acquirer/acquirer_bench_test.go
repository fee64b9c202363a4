package acquirer

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// BenchmarkAuthorize decides and durably stores new authorizations from parallel callers (group
// commit on SQLite with fsync), and replays known keys.
func BenchmarkAuthorize(b *testing.B) {
	st, err := OpenStore(context.Background(), filepath.Join(b.TempDir(), "acquirer.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	a, err := New(context.Background(), st, Config{MaxOperations: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	b.Run("new", func(b *testing.B) {
		b.SetParallelism(16) // 16 × GOMAXPROCS callers in flight, as payment's concurrent requests would be
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				key := fmt.Sprint("k", n.Add(1))
				if _, _, err := a.Act(context.Background(), Request{Kind: Authorize, Key: key, Amount: 100, Currency: "USD", Method: "card", Token: "tok"}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("replay", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, replayed, err := a.Act(context.Background(), Request{Kind: Authorize, Key: "k1", Amount: 100, Currency: "USD", Method: "card", Token: "tok"}); err != nil || !replayed {
					b.Errorf("replay: %v %v", replayed, err)
					return
				}
			}
		})
	})
}
