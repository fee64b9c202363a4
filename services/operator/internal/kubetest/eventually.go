package kubetest

import (
	"testing"
	"time"
)

// Eventually polls f until it returns nil, failing the test with f's last error after timeout:
// controllers converge, so tests wait for a state rather than sleep.
func Eventually(t testing.TB, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
