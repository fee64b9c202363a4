package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// receiver is a customer's endpoint: it verifies every request with the README snippet and counts
// what it accepted per event id.
type receiver struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	got    map[string]int                                    // event id -> requests answered 2xx
	bodies map[string]string                                 // event id -> the first body seen
	bad    int                                               // requests that failed verification or changed body
	hook   func(w http.ResponseWriter, r *http.Request) bool // optional: true when it answered itself
}

func newReceiver(t *testing.T, secret string) *receiver {
	return &receiver{t: t, secret: secret, got: map[string]int{}, bodies: map[string]string{}}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil || !VerifyBourseSignature(r.Header.Get("Bourse-Signature"), body, rc.secret, time.Now()) {
		rc.mu.Lock()
		rc.bad++
		rc.mu.Unlock()
		http.Error(w, "bad signature", http.StatusBadRequest)
		return
	}
	var ev struct{ ID string }
	if json.Unmarshal(body, &ev) != nil || ev.ID == "" {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	if first, ok := rc.bodies[ev.ID]; ok && first != string(body) {
		rc.bad++
	} else if !ok {
		rc.bodies[ev.ID] = string(body)
	}
	rc.mu.Unlock()
	if rc.hook != nil && rc.hook(w, r) {
		return
	}
	rc.mu.Lock()
	rc.got[ev.ID]++
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) count() (int, map[string]int, int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	cp := make(map[string]int, len(rc.got))
	for k, v := range rc.got {
		cp[k] = v
	}
	return len(rc.got), cp, rc.bad
}

func addEvents(st *memStore, n int, ep Endpoint, prefix string) {
	for i := range n {
		id := fmt.Sprintf("evt_%s_%d", prefix, i)
		st.add(Delivery{
			ID:       id + ":" + ep.ID,
			Event:    Event{ID: id, Type: "payment.succeeded", Created: time.Now(), Data: json.RawMessage(fmt.Sprintf(`{"id":"pay_%d","amount":%d}`, i, 100+i))},
			Endpoint: ep,
			Created:  time.Now(),
		})
	}
}

// start runs a dispatcher for receivers on loopback, so private addresses are allowed here;
// TestDeliveriesToInternalAddressesAreRefused runs one without.
func start(t *testing.T, st Store, cfg Config) (*Dispatcher, func()) {
	t.Helper()
	cfg.AllowPrivateAddresses = true
	return startAsIs(t, st, cfg)
}

func startAsIs(t *testing.T, st Store, cfg Config) (*Dispatcher, func()) {
	t.Helper()
	d := NewDispatcher(st, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{}) // closed once Run returned
	go func() {
		defer close(stopped)
		d.Run(ctx)
	}()
	stop := func() {
		cancel()
		select {
		case <-stopped:
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	}
	t.Cleanup(func() {
		cancel()
		<-stopped
	})
	return d, stop
}

func TestDeliversEverySignedEventOnce(t *testing.T) {
	a, b := newReceiver(t, "whsec_a"), newReceiver(t, "whsec_b")
	sa, sb := httptest.NewServer(a), httptest.NewServer(b)
	defer sa.Close()
	defer sb.Close()
	st := newMemStore()
	// Endpoint b is mid-rotation: the receiver still checks its previous secret.
	epA := Endpoint{ID: "we_a", URL: sa.URL, Secrets: []string{"whsec_a"}}
	epB := Endpoint{ID: "we_b", URL: sb.URL, Secrets: []string{"whsec_b2", "whsec_b"}}
	addEvents(st, 40, epA, "a")
	addEvents(st, 40, epB, "b")
	d, stop := start(t, st, Config{Concurrency: 8, PollInterval: 20 * time.Millisecond})
	d.Kick()
	eventually(t, 30*time.Second, "every delivery final", st.allFinal)
	stop()

	for name, rc := range map[string]*receiver{"a": a, "b": b} {
		n, got, bad := rc.count()
		if n != 40 || bad != 0 {
			t.Errorf("receiver %s: %d events, %d bad requests; want 40 and 0", name, n, bad)
		}
		for id, c := range got {
			if c != 1 {
				t.Errorf("receiver %s: %s delivered %d times", name, id, c)
			}
		}
	}
	fin, log := st.snapshot()
	for id, o := range fin {
		if o != Delivered {
			t.Errorf("%s: %v", id, o)
		}
	}
	if len(log) != 80 {
		t.Fatalf("%d attempts logged, want 80", len(log))
	}
	for _, r := range log {
		if r.Attempt != 1 || r.StatusCode != http.StatusNoContent || r.Outcome != Delivered {
			t.Errorf("attempt %+v", r)
		}
	}
}

// listenOn binds addr again (the receiver coming back on its old address), retrying while the
// kernel still holds it.
func listenOn(t *testing.T, addr string) net.Listener {
	t.Helper()
	for i := 0; ; i++ {
		l, err := net.Listen("tcp", addr)
		if err == nil {
			return l
		}
		if i == 100 {
			t.Fatalf("listen %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestReceiverDownForAWhileGetsEveryEvent(t *testing.T) {
	rc := newReceiver(t, "whsec")
	// Down means two things here: first nothing listens (connection refused), then it listens but
	// answers 503, then it is back.
	var failing atomic.Bool
	var refused503 atomic.Int32
	rc.hook = func(w http.ResponseWriter, r *http.Request) bool {
		if failing.Load() {
			refused503.Add(1)
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return true
		}
		return false
	}
	srv := httptest.NewServer(rc)
	addr := srv.Listener.Addr().String()
	srv.Close()

	st := newMemStore()
	ep := Endpoint{ID: "we_1", URL: "http://" + addr + "/hook", Secrets: []string{"whsec"}}
	addEvents(st, 30, ep, "x")
	_, stop := start(t, st, Config{
		Concurrency: 8, PerEndpoint: 8, PollInterval: 10 * time.Millisecond,
		InitialBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, RequestTimeout: 2 * time.Second,
	})
	attemptsAtLeast := func(n int) func() bool {
		return func() bool {
			_, log := st.snapshot()
			per := map[string]int{}
			for _, r := range log {
				per[r.DeliveryID]++
			}
			for _, c := range per {
				if c < n {
					return false
				}
			}
			return len(per) == 30
		}
	}
	eventually(t, 30*time.Second, "two refused attempts per delivery", attemptsAtLeast(2))

	failing.Store(true)
	back := httptest.NewUnstartedServer(rc)
	back.Listener.Close()
	back.Listener = listenOn(t, addr)
	back.Start()
	defer back.Close()
	eventually(t, 30*time.Second, "503s answered", func() bool { return refused503.Load() >= 30 })
	failing.Store(false)

	eventually(t, 60*time.Second, "every delivery final", st.allFinal)
	stop()

	n, got, bad := rc.count()
	if n != 30 || bad != 0 {
		t.Fatalf("%d events received, %d requests failed verification or changed body; want 30 and 0", n, bad)
	}
	for id, c := range got {
		if c != 1 {
			t.Errorf("%s accepted %d times", id, c)
		}
	}
	fin, log := st.snapshot()
	perDelivery := map[string][]Result{}
	for _, r := range log {
		perDelivery[r.DeliveryID] = append(perDelivery[r.DeliveryID], r)
	}
	for id, rs := range perDelivery {
		if fin[id] != Delivered {
			t.Errorf("%s ended %v", id, fin[id])
		}
		for i, r := range rs {
			if r.Attempt != i+1 {
				t.Errorf("%s: attempt %d logged as %d", id, i+1, r.Attempt)
			}
			last := i == len(rs)-1
			if last != (r.Outcome == Delivered) {
				t.Errorf("%s attempt %d: %v", id, r.Attempt, r.Outcome)
			}
			if r.Outcome == Failed {
				if r.Error == "" || r.NextAttempt.Before(r.At.Add(10*time.Millisecond)) {
					t.Errorf("%s attempt %d: failed without an error or a backoff: %+v", id, r.Attempt, r)
				}
			}
		}
		if len(rs) < 3 {
			t.Errorf("%s: %d attempts; want at least 2 refused and 1 delivered", id, len(rs))
		}
	}
	var answered503 int
	for _, r := range log {
		if r.StatusCode == http.StatusServiceUnavailable {
			answered503++
		}
	}
	if answered503 < 30 {
		t.Errorf("%d attempts logged a 503, the receiver answered %d", answered503, refused503.Load())
	}
}

func TestSlowReceiverDoesNotStallOthers(t *testing.T) {
	release := make(chan struct{})
	var slowNow, slowMax atomic.Int32
	slowRc := newReceiver(t, "s")
	slowRc.hook = func(w http.ResponseWriter, r *http.Request) bool {
		n := slowNow.Add(1)
		defer slowNow.Add(-1)
		for {
			m := slowMax.Load()
			if n <= m || slowMax.CompareAndSwap(m, n) {
				break
			}
		}
		select {
		case <-release:
			return false
		case <-r.Context().Done():
			return true
		}
	}
	fastRc := newReceiver(t, "f")
	slow, fast := httptest.NewServer(slowRc), httptest.NewServer(fastRc)
	defer slow.Close()
	defer fast.Close()

	st := newMemStore()
	// The slow endpoint's events are older, so they come first out of the store.
	addEvents(st, 20, Endpoint{ID: "we_slow", URL: slow.URL, Secrets: []string{"s"}}, "slow")
	time.Sleep(time.Millisecond)
	addEvents(st, 20, Endpoint{ID: "we_fast", URL: fast.URL, Secrets: []string{"f"}}, "fast")
	_, stop := start(t, st, Config{
		Concurrency: 4, PerEndpoint: 2, PollInterval: 10 * time.Millisecond,
		RequestTimeout: time.Minute,
	})
	eventually(t, 30*time.Second, "the fast receiver gets its 20 events while the slow one hangs", func() bool {
		n, _, _ := fastRc.count()
		return n == 20
	})
	if n, _, _ := slowRc.count(); n != 0 {
		t.Fatalf("slow receiver answered %d before release", n)
	}
	if m := slowMax.Load(); m > 2 {
		t.Fatalf("slow endpoint held %d workers at once, PerEndpoint is 2", m)
	}
	close(release)
	eventually(t, 30*time.Second, "every delivery final", st.allFinal)
	stop()
	if n, _, bad := slowRc.count(); n != 20 || bad != 0 {
		t.Fatalf("slow receiver: %d events, %d bad", n, bad)
	}
}

func TestStopRecordsTheAttemptsInFlight(t *testing.T) {
	rc := newReceiver(t, "s")
	entered := make(chan struct{}, 10)
	rc.hook = func(w http.ResponseWriter, r *http.Request) bool {
		entered <- struct{}{}
		<-r.Context().Done() // hangs until the dispatcher gives up on it
		return true
	}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	st := newMemStore()
	addEvents(st, 2, Endpoint{ID: "we", URL: srv.URL, Secrets: []string{"s"}}, "h")
	_, stop := start(t, st, Config{Concurrency: 2, PerEndpoint: 2, RequestTimeout: time.Minute, PollInterval: 10 * time.Millisecond})
	<-entered
	<-entered
	stop() // returns only once both attempts ended and were recorded
	fin, log := st.snapshot()
	if len(log) != 2 {
		t.Fatalf("%d attempts recorded after stop, want 2", len(log))
	}
	for _, r := range log {
		if r.Outcome != Failed || fin[r.DeliveryID] != 0 {
			t.Errorf("interrupted attempt %+v (final %v): want failed and due again", r, fin[r.DeliveryID])
		}
	}
}

func TestGivesUpAfterMaxAge(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "nope", http.StatusInternalServerError)
	}))
	defer srv.Close()
	st := newMemStore()
	addEvents(st, 1, Endpoint{ID: "we", URL: srv.URL, Secrets: []string{"s"}}, "g")
	_, stop := start(t, st, Config{PollInterval: 5 * time.Millisecond, InitialBackoff: 20 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, MaxAge: 300 * time.Millisecond})
	eventually(t, 30*time.Second, "the delivery is final", st.allFinal)
	time.Sleep(100 * time.Millisecond)
	stop()
	fin, log := st.snapshot()
	if fin["evt_g_0:we"] != GaveUp {
		t.Fatalf("final %v, want gave_up", fin["evt_g_0:we"])
	}
	if len(log) < 3 || int(calls.Load()) != len(log) {
		t.Fatalf("%d attempts logged, %d made; want the same, at least 3", len(log), calls.Load())
	}
	last := log[len(log)-1]
	if last.Outcome != GaveUp || last.StatusCode != 500 || last.Response != "nope\n" {
		t.Fatalf("last attempt %+v", last)
	}
	// No retry was ever scheduled past MaxAge from the delivery's creation.
	created := st.rows["evt_g_0:we"].d.Created
	for _, r := range log[:len(log)-1] {
		if r.Outcome != Failed || r.NextAttempt.After(created.Add(300*time.Millisecond)) {
			t.Fatalf("attempt %d: %v, next at +%v; MaxAge is 300ms", r.Attempt, r.Outcome, r.NextAttempt.Sub(created))
		}
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	srv := httptest.NewServer(http.RedirectHandler(other.URL, http.StatusFound))
	defer srv.Close()
	st := newMemStore()
	addEvents(st, 1, Endpoint{ID: "we", URL: srv.URL, Secrets: []string{"s"}}, "r")
	_, stop := start(t, st, Config{PollInterval: 5 * time.Millisecond, InitialBackoff: time.Hour})
	eventually(t, 30*time.Second, "one attempt", func() bool { _, log := st.snapshot(); return len(log) == 1 })
	stop()
	_, log := st.snapshot()
	if log[0].Outcome != Failed || log[0].StatusCode != http.StatusFound || elsewhere.Load() != 0 {
		t.Fatalf("attempt %+v, redirect target called %d times", log[0], elsewhere.Load())
	}
}

func TestEventBodyIsStable(t *testing.T) {
	ev := Event{ID: "evt_1", Type: "payment.succeeded", Created: time.Unix(1764590000, 0), Data: json.RawMessage(`{"a":1}`)}
	b1, err := ev.Body()
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := ev.Body()
	want := `{"id":"evt_1","type":"payment.succeeded","created":1764590000,"data":{"a":1}}`
	if string(b1) != want || string(b2) != want {
		t.Fatalf("body %s, want %s", b1, want)
	}
	if _, err := (Event{ID: "e", Data: json.RawMessage(`{`)}).Body(); err == nil {
		t.Fatal("invalid data encoded")
	}
}

// A customer's endpoint that points at an internal address (loopback here; the same for private and
// link-local ones, and for names resolving to them) gets no request: the dial is refused, and the
// attempt is recorded as failed with the reason.
func TestDeliveriesToInternalAddressesAreRefused(t *testing.T) {
	rc := newReceiver(t, "whsec_a")
	srv := httptest.NewServer(rc)
	defer srv.Close()
	st := newMemStore()
	addEvents(st, 3, Endpoint{ID: "we_a", URL: srv.URL, Secrets: []string{"whsec_a"}}, "a")
	d, stop := startAsIs(t, st, Config{PollInterval: 5 * time.Millisecond, InitialBackoff: time.Hour})
	d.Kick()
	eventually(t, 30*time.Second, "three failed attempts", func() bool {
		_, log := st.snapshot()
		return len(log) >= 3
	})
	stop()
	if n, _, _ := rc.count(); n != 0 {
		t.Fatalf("the internal receiver got %d requests, want none", n)
	}
	_, log := st.snapshot()
	for _, r := range log {
		if r.Outcome != Failed || !strings.Contains(r.Error, "not a public address") {
			t.Errorf("attempt %+v: want Failed naming the address", r)
		}
	}
}
