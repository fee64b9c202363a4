package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/bourse-dev/bourse/pkg/testenv"
	"github.com/bourse-dev/bourse/pkg/tlsconfig"
)

// The Consul agent checks a mutual TLS instance through the same handshake as clients: with its own
// certificate from the CA, requiring the instance's certificate to name the service. An instance
// whose certificate names another service never passes, so no resolver hands it out.
func TestConsulChecksOverMutualTLS(t *testing.T) {
	dir := t.TempDir()
	if _, err := tlsconfig.WriteDevPKI(dir, "probe", "other", "consul"); err != nil {
		t.Fatal(err)
	}
	agentFiles := tlsconfig.FilesIn(dir, "consul")
	agent := testenv.StartConsul(t, tlsconfig.ConsulAgentHCL(agentFiles))

	run := func(id string, f tlsconfig.Files) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- NewApp("probe", Defaults{GRPCAddr: "127.0.0.1:0"}).Run(ctx, []string{"--consul-addr=" + agent.Addr, "--instance-id=" + id,
				"--check-interval=1s", "--log-level=error", "--deregister-grace=0s",
				"--tls-cert=" + f.Cert, "--tls-key=" + f.Key, "--tls-ca=" + f.CA},
				func(context.Context, *Env) (Service, error) {
					return Service{Register: func(grpc.ServiceRegistrar) {}}, nil
				})
		}()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s: Run: %v", id, err)
			}
		})
	}
	run("probe-right", tlsconfig.FilesIn(dir, "probe"))
	run("probe-misnamed", tlsconfig.FilesIn(dir, "other"))

	testenv.WaitFor(t, 20*time.Second, "the misnamed instance's check to run", func() bool {
		return strings.Contains(checkOutput(t, agent, "probe-misnamed"), "certificate")
	})
	testenv.WaitFor(t, 20*time.Second, "the right instance passing", func() bool {
		ids := agent.Passing(t, "probe")
		return len(ids) == 1 && ids[0] == "probe-right"
	})
	out := checkOutput(t, agent, "probe-misnamed")
	t.Logf("misnamed instance: %s", out)
	if !strings.Contains(out, "not probe") {
		t.Errorf("misnamed instance's check output %q does not say which name was wanted", out)
	}
}

func checkOutput(t *testing.T, agent *testenv.ConsulAgent, id string) string {
	t.Helper()
	checks, err := agent.Client.Agent().Checks()
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := checks["service:"+id]; ok {
		return c.Output
	}
	return ""
}
