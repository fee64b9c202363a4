package resolver_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/bourse-dev/bourse/pkg/client"
	"github.com/bourse-dev/bourse/pkg/consul"
	"github.com/bourse-dev/bourse/pkg/resolver"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

func TestStateKeepsInstancesWithEveryTag(t *testing.T) {
	st := resolver.State([]consul.Instance{
		{Address: "10.0.0.1", Port: 1, Tags: []string{"v2", "eu"}},
		{Address: "10.0.0.2", Port: 2, Tags: []string{"v2"}},
		{Address: "::1", Port: 3, Tags: []string{"eu", "v2"}},
	}, []string{"eu", "v2"})
	var got []string
	for _, e := range st.Endpoints {
		got = append(got, e.Addresses[0].Addr)
	}
	if !slices.Equal(got, []string{"10.0.0.1:1", "[::1]:3"}) || len(st.Addresses) != 2 {
		t.Fatalf("state = %v", got)
	}
}

// Round robin spreads calls over every registered instance, a tag in the target narrows the set, and
// a new registration is picked up without redialing.
func TestResolverFollowsCatalog(t *testing.T) {
	agent := testenv.StartConsul(t)
	addrs := startBackends(t, agent, "plain", 2)
	b := resolver.NewBuilder(agent.Client, nil)

	peers := func(target string, calls int) map[string]int {
		conn, err := client.Dial(target, client.Options{Resolver: b})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return collect(t, healthpb.NewHealthClient(conn), calls)
	}
	got := peers("consul:///bench", 100)
	if len(got) != 2 || got[addrs[0]] < 20 || got[addrs[1]] < 20 {
		t.Fatalf("round robin hit %v, want both of %v about evenly", got, addrs)
	}

	// A third instance with a tag: a tagged target sees only it.
	tagged := startBackends(t, agent, "canary", 1, "canary")
	got = peers("consul:///bench?tag=canary", 10)
	if len(got) != 1 || got[tagged[0]] != 10 {
		t.Fatalf("tagged target hit %v, want only %s", got, tagged[0])
	}

	// One connection follows the catalog: deregistering an instance moves every call off it.
	conn, err := client.Dial("consul:///bench", client.Options{Resolver: b})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	collect(t, hc, 10)
	if err := consul.Deregister(context.Background(), agent.Client, "plain-0"); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 5*time.Second, "calls to leave the deregistered instance", func() bool {
		got := collect(t, hc, 30)
		return got[addrs[0]] == 0 && got[addrs[1]] > 0 && got[tagged[0]] > 0
	})
}

func collect(t *testing.T, hc healthpb.HealthClient, calls int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for range calls {
		var p peer.Peer
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p), grpc.WaitForReady(true))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		seen[p.Addr.String()]++
	}
	return seen
}
