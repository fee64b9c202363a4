package webhook

import (
	"strings"
	"testing"
	"time"
)

// Enough hanging endpoints to hold every worker at their PerEndpoint share (here four, each with a
// backlog older than anything else) do not stall the other endpoints: once an endpoint's attempt
// has been slow, it gets one worker at a time from a share of half of them, so the healthy endpoints
// keep the other half. Before, the four held all the workers until their backlog was through (each
// attempt a full RequestTimeout), and every other account's events waited behind them.
func TestManySlowEndpointsDoNotStarveTheOthers(t *testing.T) {
	st := newMemStore()
	hang, fastRc, fastURL := withHangingEndpoints(t, st, "")
	time.Sleep(time.Millisecond)
	addEvents(st, 20, Endpoint{ID: "we_fast", URL: fastURL, Secrets: []string{"f"}}, "fast")
	const timeout = 500 * time.Millisecond
	d, stop := start(t, st, Config{
		Concurrency: 4, PerEndpoint: 1, PollInterval: 10 * time.Millisecond,
		RequestTimeout: timeout, InitialBackoff: 50 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
	})
	d.Kick()
	// The first round of the hanging endpoints' attempts holds every worker for one timeout; after
	// that the fast endpoint's deliveries need milliseconds. Five timeouts is ample on a loaded machine;
	// the backlog ahead of them takes 30 timeouts.
	began := time.Now()
	waitReceived(t, 10*timeout, fastRc, 20, "the fast endpoint gets its 20 events while four endpoints hang")
	took := time.Since(began)
	// From then on every hanging endpoint is known to be slow: together they hold at most half the
	// workers, one each. Measured from the attempt log (the dispatcher's side of each request).
	learned := time.Now()
	time.Sleep(4 * timeout)
	stop()
	_, log := st.snapshot()
	type span struct{ from, to time.Time }
	var spans []span
	for _, r := range log {
		if strings.HasPrefix(r.DeliveryID, "evt_slow") && r.At.Add(r.Duration).After(learned) {
			spans = append(spans, span{r.At, r.At.Add(r.Duration)})
		}
	}
	most := 0
	for _, a := range spans {
		n := 0
		for _, b := range spans {
			if !b.from.After(a.from) && b.to.After(a.from) {
				n++
			}
		}
		most = max(most, n)
	}
	if len(spans) < 4 || most > 2 {
		t.Fatalf("%d slow attempts after the first round, at most %d at once; want some, and at most 2 (their share of 4 workers)", len(spans), most)
	}
	wantNoBadRequests(t, fastRc)
	// The hanging endpoints are still served, one worker at a time, within their share.
	if hang.total.Load() < hangingEndpoints {
		t.Fatalf("the hanging endpoints got %d requests in %v", hang.total.Load(), took)
	}
}
