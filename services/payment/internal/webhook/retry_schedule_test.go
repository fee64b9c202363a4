package webhook

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// Every failed attempt is recorded with its number and the next one scheduled by the documented
// backoff: the initial wait doubling up to MaxBackoff, drawn from the upper half, until MaxAge;
// the attempt past it gives up.
func TestRetryScheduleIsExponentialCappedAndRecorded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusBadGateway)
	}))
	defer srv.Close()
	st := newMemStore()
	addEvents(st, 1, Endpoint{ID: "we", URL: srv.URL, Secrets: []string{"s"}}, "b")
	const initial, capped, maxAge = 20 * time.Millisecond, 80 * time.Millisecond, time.Second
	_, stop := start(t, st, Config{PollInterval: 2 * time.Millisecond, InitialBackoff: initial, MaxBackoff: capped, MaxAge: maxAge})
	eventually(t, 30*time.Second, "the delivery given up", st.allFinal)
	stop()
	fin, log := st.snapshot()
	if fin["evt_b_0:we"] != GaveUp || len(log) < 8 {
		t.Fatalf("final %v after %d attempts; want gave_up after many", fin["evt_b_0:we"], len(log))
	}
	for i, r := range log {
		if r.Attempt != i+1 || r.StatusCode != http.StatusBadGateway || r.Response != "no\n" {
			t.Fatalf("log entry %d: %+v", i, r)
		}
		if i == len(log)-1 {
			break
		}
		full := min(initial<<i, capped)
		if wait := r.NextAttempt.Sub(r.At); r.Outcome != Failed || wait < full/2 || wait > full {
			t.Fatalf("attempt %d: %v, next in %v; want failed, in [%v, %v]", r.Attempt, r.Outcome, wait, full/2, full)
		}
		// Attempted when due, not before.
		if next := log[i+1].At; next.Before(r.NextAttempt) {
			t.Fatalf("attempt %d made at %v, due at %v", r.Attempt+1, next, r.NextAttempt)
		}
	}
}
