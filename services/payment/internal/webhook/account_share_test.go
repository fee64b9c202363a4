package webhook

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// claimWatch is a memStore that counts, per account, the deliveries the dispatcher holds (returned
// by Due and not yet recorded), as each Due begins: by then the dispatcher has handed back what it
// did not keep of the previous batch, so what it holds is what runs and what waits in its queue.
type claimWatch struct {
	*memStore
	mu      sync.Mutex
	held    map[string]string // delivery id -> account
	most    map[string]int    // account -> the most held at the start of a Due
	skipped map[string]int    // account -> the Dues that skip it
}

func newClaimWatch(st *memStore) *claimWatch {
	return &claimWatch{memStore: st, held: map[string]string{}, most: map[string]int{}, skipped: map[string]int{}}
}

func (c *claimWatch) Due(ctx context.Context, q DueQuery) ([]Delivery, error) {
	c.mu.Lock()
	per := map[string]int{}
	for _, a := range c.held {
		per[a]++
	}
	for a, n := range per {
		c.most[a] = max(c.most[a], n)
	}
	for _, a := range q.SkipAccounts {
		c.skipped[a]++
	}
	c.mu.Unlock()
	out, err := c.memStore.Due(ctx, q)
	c.mu.Lock()
	for _, d := range out {
		c.held[d.ID] = d.Endpoint.Account
	}
	c.mu.Unlock()
	return out, err
}

func (c *claimWatch) Record(ctx context.Context, r Result) error {
	err := c.memStore.Record(ctx, r)
	c.mu.Lock()
	delete(c.held, r.DeliveryID)
	c.mu.Unlock()
	return err
}

func (c *claimWatch) counts() (most, skipped map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.most), maps.Clone(c.skipped)
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
		rc.hook = holdFor(&aFlight, &aDone, answerAfter)
		srv := serve(t, rc)
		addEvents(st, eventsEach, Endpoint{ID: fmt.Sprintf("we_a%d", i), Account: "acct_a", URL: srv.URL, Secrets: []string{"a"}}, fmt.Sprintf("a%d", i))
	}
	bRc := newReceiver(t, "b")
	b := serve(t, bRc)

	// Eight workers: two per endpoint and two per account (both defaults, a quarter).
	watch := newClaimWatch(st)
	d, stop := start(t, watch, Config{
		Concurrency: 8, PollInterval: 10 * time.Millisecond,
		RequestTimeout: 2 * time.Second, SlowAfter: time.Second,
	})
	d.Kick()
	// B's events come once A's backlog is being worked on: everything of A's, handed back
	// included, is due before them.
	eventually(t, 30*time.Second, "account a's first requests", func() bool { return aFlight.now.Load() >= 2 })
	addEvents(st, 20, Endpoint{ID: "we_b", Account: "acct_b", URL: b.URL, Secrets: []string{"b"}}, "b")
	d.Kick()
	waitReceived(t, 30*time.Second, bRc, 20, "account b gets its 20 events")
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
	// Its claims are bounded too: two running and two waiting, and then it is skipped when claiming,
	// so its backlog never takes the claims the other account's deliveries need.
	most, skipped := watch.counts()
	if most["acct_a"] > 4 || skipped["acct_a"] == 0 {
		t.Fatalf("account a held at most %d claims and was skipped by %d Dues; want at most 4 (PerAccount running and queued), and some",
			most["acct_a"], skipped["acct_a"])
	}
	wantNoBadRequests(t, bRc)
	if got := aDone.Load(); got != endpointsOfA*eventsEach {
		t.Fatalf("account a's receivers answered %d requests, want %d (each delivered once)", got, endpointsOfA*eventsEach)
	}
}

// Slow endpoints count toward their account: an account's hanging endpoints, once known to be slow,
// get one worker each from the slow share, but never more than their account's share together (the
// slow share alone would let four of them hold half of eight workers, one each). The other
// account's deliveries go out meanwhile.
func TestSlowEndpointsCountTowardTheirAccount(t *testing.T) {
	st := newMemStore()
	hang, fastRc, fastURL := withHangingEndpoints(t, st, "acct_a")
	const timeout = 300 * time.Millisecond
	client, flight := clientFlight(hang.host)
	d, stop := start(t, st, Config{
		Concurrency: 8, PollInterval: 10 * time.Millisecond, Client: client,
		RequestTimeout: timeout, InitialBackoff: 50 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
	})
	d.Kick()
	// Long enough for every hanging endpoint to be found slow and tried again.
	eventually(t, 30*time.Second, "the hanging endpoints' requests", func() bool { return hang.total.Load() >= 3*hangingEndpoints })
	addEvents(st, 20, Endpoint{ID: "we_fast", Account: "acct_b", URL: fastURL, Secrets: []string{"f"}}, "fast")
	d.Kick()
	waitReceived(t, 30*time.Second, fastRc, 20, "account b gets its 20 events while account a's endpoints hang")
	stop()
	// Counted at the dispatcher's client: the server would count a request given up on until it
	// notices the hang-up, beside the one the freed worker sends next.
	if m := flight.max.Load(); m > 2 || m == 0 {
		t.Fatalf("account a's hanging endpoints held %d requests at once; PerAccount is 2", m)
	}
	wantNoBadRequests(t, fastRc)
}

// Within an account too, one endpoint with an older backlog, answering a little under the slow
// threshold, does not hold its account's share until the backlog is through: it may queue only half
// its account's queue, so the account's other endpoint is claimed as well, and their queued
// deliveries start oldest first. Before, the busy endpoint filled its account's queue, the account
// was skipped when claiming, and the other endpoint's deliveries waited behind most of the backlog.
func TestOneEndpointDoesNotStarveItsAccountsOthers(t *testing.T) {
	const (
		backlog     = 40
		answerAfter = 150 * time.Millisecond
	)
	var busyFlight inFlight
	var busyDone atomic.Int32
	busyRc := newReceiver(t, "a")
	busyRc.hook = holdFor(&busyFlight, &busyDone, answerAfter)
	busy := serve(t, busyRc)
	quickRc := newReceiver(t, "a")
	quick := serve(t, quickRc)
	st := newMemStore()
	addEvents(st, backlog, Endpoint{ID: "we_busy", Account: "acct_a", URL: busy.URL, Secrets: []string{"a"}}, "busy")
	d, stop := start(t, st, Config{
		Concurrency: 8, PollInterval: 10 * time.Millisecond,
		RequestTimeout: 2 * time.Second, SlowAfter: time.Second,
	})
	d.Kick()
	eventually(t, 30*time.Second, "the busy endpoint's first requests", func() bool { return busyFlight.now.Load() >= 2 })
	addEvents(st, 10, Endpoint{ID: "we_quick", Account: "acct_a", URL: quick.URL, Secrets: []string{"a"}}, "quick")
	d.Kick()
	waitReceived(t, 30*time.Second, quickRc, 10, "the quick endpoint gets its 10 events")
	n := busyDone.Load()
	t.Logf("busy endpoint: %d of %d requests answered when the quick one's 10 were through", n, backlog)
	if n >= backlog/2 {
		t.Fatalf("the busy endpoint had %d of its %d requests answered before the quick endpoint of its account got its 10", n, backlog)
	}
	eventually(t, 60*time.Second, "every delivery final", st.allFinal)
	stop()
	if m := busyFlight.max.Load(); m > 2 {
		t.Fatalf("the busy endpoint had %d requests in flight at once; PerEndpoint and PerAccount are 2", m)
	}
	wantNoBadRequests(t, busyRc, quickRc)
}
