package breaker

import (
	"testing"

	"github.com/bourse-dev/bourse/services/payment/internal/processor"
)

// Allow + Record from every core at once: the breaker is on every processor call's path.
func BenchmarkAllowRecordParallel(b *testing.B) {
	br := New("acquirer", Config{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if t, ok := br.Allow(); ok {
				t.Record(processor.Approved)
			}
		}
	})
}
