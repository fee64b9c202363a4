package server

import (
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestProfilesOnlyOnLoopbackByDefault(t *testing.T) {
	for _, c := range []struct {
		mode, addr string
		want       bool
	}{
		{"loopback", "127.0.0.1:9102", true},
		{"loopback", "[::1]:9102", true},
		{"loopback", "localhost:9102", true},
		{"loopback", "0.0.0.0:9102", false},
		{"loopback", ":9102", false},
		{"loopback", "10.1.2.3:9102", false},
		{"on", "0.0.0.0:9102", true},
		{"off", "127.0.0.1:9102", false},
	} {
		got, err := profilesOn(c.mode, c.addr)
		if err != nil || got != c.want {
			t.Errorf("profilesOn(%q, %q) = %v, %v; want %v", c.mode, c.addr, got, err, c.want)
		}
	}
	if _, err := profilesOn("yes", "127.0.0.1:1"); err == nil {
		t.Error("a bad --pprof value was accepted")
	}
}

// Served for real: the decision gates the handlers (0.0.0.0 itself is covered above; tests bind
// loopback only).
func TestProfilesGateTheHandlers(t *testing.T) {
	for mode, want := range map[string]int{"off": http.StatusNotFound, "loopback": http.StatusOK} {
		srv, addr, err := serveMetrics("127.0.0.1:0", mode, prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get("http://" + addr + "/debug/pprof/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		srv.Close()
		if resp.StatusCode != want {
			t.Errorf("--pprof=%s: /debug/pprof/ answered %s, want %d", mode, resp.Status, want)
		}
	}
}
