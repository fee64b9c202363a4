package discovery_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/bourse-dev/bourse/pkg/client"
	discoveryv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/discovery/v1"
	"github.com/bourse-dev/bourse/pkg/resolver"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

const (
	adminKey   = "test-admin-key"
	accountKey = "test-alice-key"
	// serviceKey reads the catalog: topology is for services and operators, not accounts.
	serviceKey = "test-matching-key"
	apiKeys    = adminKey + "=admin:ops," + accountKey + "=account:alice," + serviceKey + "=service:matching"
	mainPkg    = "github.com/bourse-dev/bourse/services/discovery/cmd/discovery"
)

// startDiscovery runs a discovery process registered in agent with a 1s health check.
func startDiscovery(t *testing.T, agent *testenv.ConsulAgent, env []string, args ...string) *testenv.Process {
	t.Helper()
	bin := testenv.Build(t, mainPkg)
	args = append([]string{"--consul-addr=" + agent.Addr, "--api-keys=" + apiKeys, "--check-interval=1s", "--check-timeout=500ms"}, args...)
	return testenv.StartService(t, bin, env, args...)
}

// dial connects to a fixed address with the given key.
func dial(t *testing.T, addr, key string) discoveryv1.DiscoveryServiceClient {
	t.Helper()
	conn, err := client.Dial(addr, client.Options{APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return discoveryv1.NewDiscoveryServiceClient(conn)
}

// dialConsul connects to consul:///discovery through agent, retrying Discover on Unavailable.
func dialConsul(t *testing.T, agent *testenv.ConsulAgent, key string) (*grpc.ClientConn, discoveryv1.DiscoveryServiceClient) {
	t.Helper()
	conn, err := client.Dial("consul:///discovery", client.Options{
		APIKey:     key,
		Resolver:   resolver.NewBuilder(agent.Client, nil),
		Idempotent: []string{"bourse.discovery.v1.DiscoveryService/Discover"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, discoveryv1.NewDiscoveryServiceClient(conn)
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
