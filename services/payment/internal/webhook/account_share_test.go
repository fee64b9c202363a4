package webhook

import (
	"fmt"
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

// An account with many endpoints, each with a backlog older than anything else and each answering
// a little under the slow threshold (so none is ever slow, and each may keep its PerEndpoint
// share), holds at most PerAccount workers together: another account's deliveries go out while its
// backlog is still being worked through. Before, its four endpoints held every worker (four times
// two of eight) until their backlog was through, and the other account's events waited behind it.
func TestManyEndpointsOfOneAccountDoNotStarveTheOthers(t *testing.T) {
	const (
		endpointsOfA = 4
		eventsEach   = 15
		answerAfter  = 150 * time.Millisecond // SlowAfter is a second: never slow
	)
	var aFlight inFlight
	var aDone atomic.Int32
	st := newMemStore()
	for i := range endpointsOfA {
		rc := newReceiver(t, "a")
		rc.hook = func(w http.ResponseWriter, r *http.Request) bool {
			aFlight.enter()
			defer aFlight.now.Add(-1)
			defer aDone.Add(1)
			select {
			case <-time.After(answerAfter):
				return false
			case <-r.Context().Done():
				return true
			}
		}
		srv := httptest.NewServer(rc)
		defer srv.Close()
		addEvents(st, eventsEach, Endpoint{ID: fmt.Sprintf("we_a%d", i), Account: "acct_a", URL: srv.URL, Secrets: []string{"a"}}, fmt.Sprintf("a%d", i))
	}
	bRc := newReceiver(t, "b")
	b := httptest.NewServer(bRc)
	defer b.Close()

	// Eight workers: two per endpoint and two per account (both defaults, a quarter).
	d, stop := start(t, st, Config{
		Concurrency: 8, PollInterval: 10 * time.Millisecond,
		RequestTimeout: 2 * time.Second, SlowAfter: time.Second,
	})
	d.Kick()
	// B's events come once A's backlog is being worked on: everything of A's, handed back
	// included, is due before them.
	eventually(t, 30*time.Second, "account a's first requests", func() bool { return aFlight.now.Load() >= 2 })
	addEvents(st, 20, Endpoint{ID: "we_b", Account: "acct_b", URL: b.URL, Secrets: []string{"b"}}, "b")
	d.Kick()
	eventually(t, 30*time.Second, "account b gets its 20 events", func() bool {
		n, _, _ := bRc.count()
		return n == 20
	})
	// Holding all eight workers, A would have most of its 60 requests answered before B's first;
	// with two of them, B's deliveries (milliseconds each) are through while A is a few requests in.
	n := aDone.Load()
	t.Logf("account a: %d of %d requests answered when account b's 20 were through", n, endpointsOfA*eventsEach)
	if n >= endpointsOfA*eventsEach/2 {
		t.Fatalf("account a had %d of its %d requests answered before account b's 20 were through", n, endpointsOfA*eventsEach)
	}
	// A is still served, within its share, to the end of its backlog.
	eventually(t, 60*time.Second, "every delivery final", st.allFinal)
	stop()
	if m := aFlight.max.Load(); m > 2 {
		t.Fatalf("account a had %d requests in flight at once, PerAccount is 2", m)
	}
	if _, _, bad := bRc.count(); bad != 0 {
		t.Fatalf("%d bad requests at b", bad)
	}
	if got := aDone.Load(); got != endpointsOfA*eventsEach {
		t.Fatalf("account a's receivers answered %d requests, want %d (each delivered once)", got, endpointsOfA*eventsEach)
	}
}
