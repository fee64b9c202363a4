package webhook

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// inFlight counts the requests its receivers hold at once, over all of them, and the most ever.
type inFlight struct{ now, max atomic.Int32 }

func (c *inFlight) enter() {
	n := c.now.Add(1)
	for {
		m := c.max.Load()
		if n <= m || c.max.CompareAndSwap(m, n) {
			return
		}
	}
}

// holdFor is a receiver hook that holds each request for d (or until the dispatcher gives up
// on it) before the receiver answers, counting it in flight while held and in done once let go.
func holdFor(flight *inFlight, done *atomic.Int32, d time.Duration) func(http.ResponseWriter, *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		flight.enter()
		defer flight.now.Add(-1)
		defer done.Add(1)
		select {
		case <-time.After(d):
			return false
		case <-r.Context().Done():
			return true
		}
	}
}

// hangingServer accepts requests and answers none of them until the dispatcher gives up; it counts
// the requests it held, the ones it holds and the most it held at once.
type hangingServer struct {
	inFlight
	total atomic.Int32
	host  string // its address, once served
}

func (h *hangingServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Read the body first: the server sees the client hang up (and ends the context) only after.
	io.Copy(io.Discard, r.Body)
	h.total.Add(1)
	h.enter()
	defer h.now.Add(-1)
	<-r.Context().Done()
}

// hangingEndpoints is how many endpoints behind one hangingServer the slow-endpoint tests give a
// backlog of their own.
const hangingEndpoints = 4

// withHangingEndpoints writes to st a backlog of 30 events for each of hangingEndpoints endpoints
// (of account; "" for none) behind one hanging server, and serves a receiver of secret "f" for
// the test's healthy endpoint. The servers run until the test ends.
func withHangingEndpoints(t *testing.T, st *memStore, account string) (hang *hangingServer, fastRc *receiver, fastURL string) {
	t.Helper()
	hang = &hangingServer{}
	slow := serve(t, hang)
	hang.host = slow.Listener.Addr().String()
	fastRc = newReceiver(t, "f")
	fast := serve(t, fastRc)
	for i := range hangingEndpoints {
		addEvents(st, 30, Endpoint{ID: fmt.Sprintf("we_slow%d", i), Account: account, URL: slow.URL, Secrets: []string{"s"}}, fmt.Sprintf("slow%d", i))
	}
	return hang, fastRc, fast.URL
}

// serve serves h on loopback until the test ends.
func serve(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// waitReceived waits up to within for rc to have answered n requests, failing the test with what
// if it has not.
func waitReceived(t *testing.T, within time.Duration, rc *receiver, n int, what string) {
	t.Helper()
	eventually(t, within, what, func() bool {
		got, _, _ := rc.count()
		return got == n
	})
}

// wantNoBadRequests fails the test if any of rcs was sent a request it could not verify.
func wantNoBadRequests(t *testing.T, rcs ...*receiver) {
	t.Helper()
	for _, rc := range rcs {
		if _, _, bad := rc.count(); bad != 0 {
			t.Fatalf("%d bad requests at the receiver of secret %q", bad, rc.secret)
		}
	}
}

// clientFlight counts the requests the dispatcher's client has in flight at once to host, as the
// dispatcher sees them: a request it gave up on ends here when its RoundTrip returns, whereas a
// server notices the hang-up only some time later and may count it beside the next one.
func clientFlight(host string) (*http.Client, *inFlight) {
	c := &inFlight{}
	return &http.Client{Transport: countingTransport{base: http.DefaultTransport, host: host, flight: c}}, c
}

type countingTransport struct {
	base   http.RoundTripper
	host   string
	flight *inFlight
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host != t.host {
		return t.base.RoundTrip(r)
	}
	t.flight.enter()
	defer t.flight.now.Add(-1)
	return t.base.RoundTrip(r)
}
