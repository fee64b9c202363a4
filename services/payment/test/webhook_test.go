package payment_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paymentv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/payment/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
	"github.com/bourse-dev/bourse/services/payment/internal/webhook"
)

// A receiver that refuses every delivery for a while gets every event of the account once it is
// back, each signed so that the documented verification accepts it with the secret shown at
// creation; events are deduplicated by their stable id.
func TestWebhooksReachAReceiverThatWasDown(t *testing.T) {
	s := startStack(t, sqliteArg(t))
	p := s.startPayment(t, "--processors=instant", "--webhook-initial-backoff=200ms")
	var up atomic.Bool
	var mu sync.Mutex
	got := map[string]string{} // event id → type
	var badSig atomic.Int32
	var secret atomic.Value
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !up.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		sec, _ := secret.Load().(string)
		if err := webhook.Verify(r.Header.Get("Bourse-Signature"), body, []string{sec}, 300*time.Second, time.Now()); err != nil {
			badSig.Add(1)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var ev struct{ ID, Type string }
		_ = json.Unmarshal(body, &ev)
		mu.Lock()
		got[ev.ID] = ev.Type
		mu.Unlock()
	})}
	go srv.Serve(ln) //nolint:errcheck // closed by the cleanup
	t.Cleanup(func() { srv.Close() })

	ctx := context.Background()
	ep, err := p.alice.CreateWebhookEndpoint(ctx, &paymentv1.CreateWebhookEndpointRequest{AccountId: "alice",
		Url: "http://" + ln.Addr().String() + "/hook", IdempotencyKey: "wh"})
	if err != nil {
		t.Fatal(err)
	}
	secret.Store(ep.GetSecret())
	for i, amount := range []int64{100, 200, 300} {
		if _, err := p.alice.CreatePayment(ctx, deposit("alice", amount, string(rune('a'+i)))); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Second) // deliveries fail meanwhile
	up.Store(true)
	evs, err := p.alice.ListEvents(ctx, &paymentv1.ListEventsRequest{AccountId: "alice"})
	if err != nil || len(evs.GetEvents()) != 6 {
		t.Fatalf("events: %d, %v; want 3 created + 3 succeeded", len(evs.GetEvents()), err)
	}
	testenv.WaitFor(t, 30*time.Second, "every event delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == len(evs.GetEvents())
	})
	for _, e := range evs.GetEvents() {
		if got[e.GetEventId()] != e.GetType() {
			t.Errorf("event %s (%s) delivered as %q", e.GetEventId(), e.GetType(), got[e.GetEventId()])
		}
	}
	if badSig.Load() != 0 {
		t.Fatalf("%d deliveries failed verification", badSig.Load())
	}
}
