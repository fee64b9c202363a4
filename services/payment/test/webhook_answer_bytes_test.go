package payment_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	paymentv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/payment/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// A receiver chooses every byte of its answer, and the attempt log keeps the start of it. Answers
// with NUL, invalid UTF-8, or a character cut at the 256-byte mark are recorded like any other, so
// the failures back off as scheduled (200 ms here) and the delivery ends once the receiver says 2xx.
// Before, PostgreSQL refused such text: the attempt went unrecorded, waited out its claim (40 s),
// and a final answer was never recorded, so the event was delivered again and again.
func TestWebhookAnswersOfAnyBytesAreRecorded(t *testing.T) {
	eachStore(t, func(t *testing.T, dbArg string) {
		s := startStack(t, dbArg)
		p := s.startPayment(t, "--processors=instant", "--webhook-initial-backoff=200ms", "--max-backoff=1s")
		answers := []string{"nul\x00", "bad\xff\xfe", string(make([]byte, 255)) + "é"}
		var requests, delivered atomic.Int32
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			n := int(requests.Add(1))
			w.Header().Set("Content-Type", "application/octet-stream")
			if n <= len(answers) {
				w.WriteHeader(http.StatusServiceUnavailable)
			} else {
				delivered.Add(1)
			}
			w.Write([]byte(answers[(n-1)%len(answers)]))
		})}
		go srv.Serve(ln) //nolint:errcheck // closed by the cleanup
		t.Cleanup(func() { srv.Close() })
		ctx := context.Background()
		// One event: only payment.created is subscribed to.
		if _, err := p.alice.CreateWebhookEndpoint(ctx, &paymentv1.CreateWebhookEndpointRequest{AccountId: "alice",
			Url: "http://" + ln.Addr().String() + "/hook", EventTypes: []string{"payment.created"}, IdempotencyKey: "wh"}); err != nil {
			t.Fatal(err)
		}
		if _, err := p.alice.CreatePayment(ctx, deposit("alice", 100, "d1")); err != nil {
			t.Fatal(err)
		}
		// Three failures at 200 ms, 400 ms and 800 ms of backoff, then the 2xx: a few seconds; an
		// unrecorded attempt waits 40 s.
		testenv.WaitFor(t, 20*time.Second, "delivered after three failed attempts", func() bool { return delivered.Load() == 1 })
		// The 2xx (its body NUL again) is recorded: the delivery is final, not attempted again.
		time.Sleep(3 * time.Second)
		if n, d := requests.Load(), delivered.Load(); n != int32(len(answers))+1 || d != 1 {
			t.Fatalf("%d requests, %d answered 2xx; want %d and 1", n, d, len(answers)+1)
		}
	})
}
