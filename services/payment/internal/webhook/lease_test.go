package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/testenv"
)

// heldServer holds every request until release is closed (or the client gives up), counting arrivals.
func heldServer(t *testing.T) (*httptest.Server, *atomic.Int32, chan struct{}) {
	t.Helper()
	var got atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv, &got, release
}

// A queued delivery starts only once a request ahead of it ends, which may take a whole
// RequestTimeout, and then takes up to one of its own: its claim must outlast both, or another
// replica's Due takes it while its attempt is still in flight and the receiver gets it twice at once.
func TestQueuedDeliveryStaysClaimedWhileItsAttemptRuns(t *testing.T) {
	const timeout = time.Minute
	clock := testenv.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s1, got1, release1 := heldServer(t)
	s2, got2, release2 := heldServer(t)
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release2) }) })
	ep1 := Endpoint{ID: "we_1", URL: s1.URL, Secrets: []string{"whsec_1"}}
	ep2 := Endpoint{ID: "we_2", URL: s2.URL, Secrets: []string{"whsec_2"}}
	st := newMemStore()
	t0 := clock.Now()
	for i, ep := range []Endpoint{ep1, ep2} {
		st.add(Delivery{ID: "evt_" + ep.ID + ":" + ep.ID, Endpoint: ep, Created: t0.Add(time.Duration(i-2) * time.Millisecond),
			Event: Event{ID: "evt_" + ep.ID, Type: "payment.succeeded", Created: t0, Data: json.RawMessage(`{"id":"pay_1"}`)}})
	}
	// One worker: the first delivery runs, the second waits in the local queue. No poll by the
	// ticker, so the store sees only the claims the test expects.
	_, stop := start(t, st, Config{Concurrency: 1, RequestTimeout: timeout, PollInterval: time.Hour, Now: clock.Now})
	defer stop()
	eventually(t, 10*time.Second, "the first delivery's request", func() bool { return got1.Load() == 1 })

	// The first request takes the whole timeout (by the dispatcher's clock), then the queued one starts.
	clock.Advance(timeout)
	close(release1)
	eventually(t, 10*time.Second, "the queued delivery's request", func() bool { return got2.Load() == 1 })

	// Its request has run for less than its timeout; another replica asks the store for due deliveries.
	clock.Advance(timeout/2 + time.Second)
	due, err := st.Due(context.Background(), DueQuery{Now: clock.Now(), Lease: timeout + 30*time.Second, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, dl := range due {
		if dl.Endpoint.ID == ep2.ID {
			t.Fatalf("delivery %s was claimable by another replica while its attempt was in flight here", dl.ID)
		}
	}
	once.Do(func() { close(release2) })
}
