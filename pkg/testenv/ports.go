package testenv

import (
	"errors"
	"strings"
	"testing"
)

// The tools testenv starts (Consul 1.14's dev agent, redis-server, postgres, Jaeger) cannot all
// bind port 0 and report every address they got, so they are given ports FreePort found free a
// moment ago. Another process may take such a port in between; the tool then fails to bind and
// exits, and the whole start is retried with fresh ports. Our own services bind port 0 and report
// their addresses in a ready file (StartService), so they never race.

// bindAttempts is how many starts with fresh ports a tool gets.
const bindAttempts = 5

// errPortTaken marks a start that failed because a chosen port was taken in the meantime.
var errPortTaken = errors.New("a chosen port was taken")

// pickPort chooses the ports of a start; tests of the retry replace it.
var pickPort = FreePort

// portTaken reports whether a tool's log shows a failed bind.
func portTaken(log string) bool {
	return strings.Contains(strings.ToLower(log), "address already in use")
}

// withFreshPorts calls start, which chooses its ports with pickPort, until it succeeds, retrying
// only a start that failed with errPortTaken.
func withFreshPorts[T any](t testing.TB, what string, start func() (T, error)) T {
	t.Helper()
	var err error
	for attempt := 1; attempt <= bindAttempts; attempt++ {
		var v T
		if v, err = start(); err == nil {
			return v
		}
		if !errors.Is(err, errPortTaken) {
			t.Fatalf("testenv: %s: %v", what, err)
		}
		t.Logf("testenv: %s: a port was taken before it could bind; starting again with fresh ports (%d of %d)", what, attempt, bindAttempts)
	}
	t.Fatalf("testenv: %s: %v (%d attempts)", what, err, bindAttempts)
	var zero T
	return zero
}

// exitError is the error of a tool that exited during its start, errPortTaken if its log shows a
// failed bind.
func exitError(what, log string) error {
	if portTaken(log) {
		return &startError{what: what, log: log, taken: true}
	}
	return &startError{what: what, log: log}
}

type startError struct {
	what, log string
	taken     bool
}

func (e *startError) Error() string { return e.what + " exited during start:\n" + e.log }

func (e *startError) Is(target error) bool { return e.taken && target == errPortTaken }

func hasExited(exited <-chan struct{}) bool {
	select {
	case <-exited:
		return true
	default:
		return false
	}
}
