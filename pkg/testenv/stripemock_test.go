package testenv

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// Two stripe-mocks side by side get their own loopback ports, each answers as stripe-mock, and a
// stopped one no longer listens.
func TestStartStripeMock(t *testing.T) {
	var first *StripeMock
	t.Run("first", func(t *testing.T) {
		first = StartStripeMock(t)
		second := StartStripeMock(t)
		if first.Addr == second.Addr {
			t.Fatalf("both stripe-mocks at %s", first.Addr)
		}
		for _, sm := range []*StripeMock{first, second} {
			if !strings.HasPrefix(sm.Addr, "127.0.0.1:") {
				t.Fatalf("stripe-mock not on loopback: %s", sm.Addr)
			}
			if err := stripeMockServes(&http.Client{Timeout: 2 * time.Second}, sm.URL); err != nil {
				t.Fatal(err)
			}
		}
	})
	// The subtest's cleanup stopped it.
	if err := stripeMockServes(&http.Client{Timeout: 2 * time.Second}, first.URL); err == nil {
		t.Fatalf("stripe-mock at %s still answers after its test ended", first.Addr)
	}
}
