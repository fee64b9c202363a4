package webhook

import (
	"bytes"
	"testing"
	"time"
)

func BenchmarkSignVerify(b *testing.B) {
	body := bytes.Repeat([]byte(`{"id":"evt_1","type":"payment.succeeded"}`), 25) // ~1 KB
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		h := Sign(body, []string{"whsec_1"}, now)
		if err := Verify(h, body, []string{"whsec_1"}, 0, now); err != nil {
			b.Fatal(err)
		}
	}
}
