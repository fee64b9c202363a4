package client

import "testing"

// The name a TLS server must prove is the service dialled, not whatever address Consul handed out.
func TestServerName(t *testing.T) {
	for _, c := range []struct{ target, override, want string }{
		{"consul:///risk", "", "risk"},
		{"consul://127.0.0.1:8500/risk?tag=canary", "", "risk"},
		{"consul:///risk", "ledger", "ledger"},
		{"127.0.0.1:7002", "", ""}, // gRPC verifies the host of the address
		{"dns:///risk.bourse.svc:7002", "", ""},
		{"127.0.0.1:7002", "risk", "risk"},
	} {
		if got := serverName(c.target, c.override); got != c.want {
			t.Errorf("serverName(%q, %q) = %q, want %q", c.target, c.override, got, c.want)
		}
	}
}
