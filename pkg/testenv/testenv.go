// Package testenv starts the real parts integration tests need — a Consul dev agent, Jaeger, and
// service processes — on free loopback ports, and stops them when the test ends. Tools come from the
// repository's ./bin (installed by `make tools`); a missing tool fails the test, it never skips.
package testenv

import (
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// RepoRoot is the directory holding go.work.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testenv: no go.work above the test directory")
		}
		dir = parent
	}
}

// Tool returns the path of a pinned tool in ./bin.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(RepoRoot(t), "bin", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("testenv: %s is not installed; run `make tools` (%v)", name, err)
	}
	return p
}

var (
	portMu    sync.Mutex
	handedOut = map[int]bool{}
)

// FreePort returns a loopback TCP port that was free a moment ago and has not been handed out
// before in this test process.
func FreePort(t testing.TB) int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !handedOut[port] {
			handedOut[port] = true
			return port
		}
	}
	t.Fatal("testenv: no free port")
	return 0
}
