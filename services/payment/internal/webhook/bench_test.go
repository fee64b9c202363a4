package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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

// BenchmarkDeliver is the dispatcher's cost per delivery to a quick loopback receiver, scheduling
// included: b.N deliveries over 32 endpoints, 16 workers.
func BenchmarkDeliver(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	st := newMemStore()
	for i := range b.N {
		ep := Endpoint{ID: fmt.Sprintf("we_%d", i%32), URL: srv.URL, Secrets: []string{"s"}}
		id := fmt.Sprintf("evt_%d", i)
		st.add(Delivery{ID: id + ":" + ep.ID, Event: Event{ID: id, Type: "payment.succeeded", Created: time.Now(), Data: json.RawMessage(`{"id":"pay_1"}`)},
			Endpoint: ep, Created: time.Now()})
	}
	b.ReportAllocs()
	b.ResetTimer()
	d := NewDispatcher(st, Config{Concurrency: 16, PollInterval: time.Millisecond, AllowPrivateAddresses: true})
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); d.Run(ctx) }()
	for !st.allFinal() {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	cancel()
	<-stopped
}
