package testenv

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/bourse-dev/bourse/pkg/consul"
)

// ConsulAgent is a running `consul agent -dev` on loopback.
type ConsulAgent struct {
	Addr   string // HTTP API host:port
	Client *api.Client
}

// StartConsul starts a Consul dev agent with every port chosen free and DNS/gRPC off, and waits until
// it has a leader. extraHCL is more agent configuration (e.g. TLS for health checks). A start that
// loses one of its ports to another process is retried with fresh ports.
func StartConsul(t testing.TB, extraHCL ...string) *ConsulAgent {
	t.Helper()
	bin := Tool(t, "consul")
	return withFreshPorts(t, "consul", func() (*ConsulAgent, error) { return startConsul(t, bin, extraHCL) })
}

func startConsul(t testing.TB, bin string, extraHCL []string) (*ConsulAgent, error) {
	httpPort := pickPort(t)
	ports := fmt.Sprintf(`ports { http = %d, https = -1, dns = -1, grpc = -1, grpc_tls = -1, serf_lan = %d, serf_wan = %d, server = %d }`,
		httpPort, pickPort(t), pickPort(t), pickPort(t))
	dir := t.TempDir()
	logPath := filepath.Join(dir, "consul.log")
	node := "test-" + filepath.Base(dir)
	args := []string{"agent", "-dev", "-bind=127.0.0.1", "-client=127.0.0.1",
		"-node=" + node, "-log-level=warn", "-hcl", ports}
	for _, h := range extraHCL {
		args = append(args, "-hcl", h)
	}
	cmd := exec.Command(bin, args...)
	exited := startBackground(t, cmd, logPath, os.Interrupt)

	agent := &ConsulAgent{Addr: fmt.Sprintf("127.0.0.1:%d", httpPort)}
	client, err := consul.NewClient(agent.Addr)
	if err != nil {
		return nil, err
	}
	agent.Client = client
	// Whatever holds the port may accept and never answer: the start-up queries time out.
	probeCfg := api.DefaultNonPooledConfig()
	probeCfg.Address = agent.Addr
	probeCfg.HttpClient = &http.Client{Timeout: 2 * time.Second}
	probe, err := api.NewClient(probeCfg)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		// The HTTP port may be another agent's, one that took it first: only this agent's own
		// answer counts (this one exits when its bind fails).
		leader, err := probe.Status().Leader()
		if err == nil && leader != "" {
			if name, nerr := probe.Agent().NodeName(); nerr == nil && name == node {
				return agent, nil
			}
		}
		select {
		case <-exited:
			return nil, exitError("consul", readFile(logPath))
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("consul did not elect a leader in 30s (last err %v):\n%s", err, readFile(logPath))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitFor polls cond every 50ms until it is true or timeout passes, and reports how long it took.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// Passing returns the ids of passing instances of service.
func (a *ConsulAgent) Passing(t testing.TB, service string) []string {
	t.Helper()
	return a.instanceIDs(t, consul.Query{Name: service})
}

// Registered returns the ids of every instance of service in the catalog, passing or not.
func (a *ConsulAgent) Registered(t testing.TB, service string) []string {
	t.Helper()
	return a.instanceIDs(t, consul.Query{Name: service, IncludeUnhealthy: true})
}

func (a *ConsulAgent) instanceIDs(t testing.TB, q consul.Query) []string {
	t.Helper()
	res, err := consul.Instances(context.Background(), a.Client, q, 0, 0)
	if err != nil {
		t.Fatalf("consul health query: %v", err)
	}
	ids := make([]string, 0, len(res.Instances))
	for _, inst := range res.Instances {
		ids = append(ids, inst.ID)
	}
	return ids
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}
