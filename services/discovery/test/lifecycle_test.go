package discovery_test

import (
	"context"
	"slices"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	discoveryv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/discovery/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// A service started by the runtime registers with a passing gRPC check; on SIGTERM it leaves the
// catalog and lets an in-flight call complete.
func TestRegisterPassingThenSIGTERMDrains(t *testing.T) {
	agent := testenv.StartConsul(t)
	proc := startDiscovery(t, agent, nil, "--instance-id=discovery-a", "--drain-timeout=10s")

	testenv.WaitFor(t, 10*time.Second, "discovery-a passing in consul", func() bool {
		return slices.Contains(agent.Passing(t, "discovery"), "discovery-a")
	})
	checks, _, err := agent.Client.Health().Checks("discovery", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 1 || checks[0].Type != "grpc" || checks[0].Status != "passing" {
		t.Fatalf("checks = %+v, want one passing grpc check", checks)
	}

	cli := dial(t, proc.GRPCAddr, serviceKey)
	first, err := cli.Discover(ctxTimeout(t, 5*time.Second), &discoveryv1.DiscoverRequest{Name: "discovery"})
	if err != nil {
		t.Fatal(err)
	}
	// A long poll that would wait 30s; SIGTERM must end it with an answer, not an error.
	inflight := make(chan error, 1)
	started := time.Now()
	go func() {
		_, err := cli.Discover(ctxTimeout(t, 40*time.Second), &discoveryv1.DiscoverRequest{
			Name: "nothing-registered", WaitIndex: first.Index, WaitTime: durationpb.New(30 * time.Second),
		})
		inflight <- err
	}()
	time.Sleep(300 * time.Millisecond)
	proc.Signal(syscall.SIGTERM)

	select {
	case err := <-inflight:
		if err != nil {
			t.Fatalf("in-flight call failed during drain: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("in-flight call did not complete during drain")
	}
	if !proc.WaitExit(15 * time.Second) {
		t.Fatal("process did not exit after SIGTERM")
	}
	if err := proc.ExitErr(); err != nil {
		t.Fatalf("exit: %v", err)
	}
	if elapsed := time.Since(started); elapsed > 20*time.Second {
		t.Errorf("drain took %v", elapsed)
	}
	if ids := agent.Registered(t, "discovery"); len(ids) != 0 {
		t.Fatalf("after SIGTERM the catalog still has %v", ids)
	}
	if !proc.LogContains("deregistered from consul") || !proc.LogContains("drained") {
		t.Errorf("log lacks the drain steps:\n%s", proc.Log())
	}
}

// Two instances behind consul:///discovery; SIGKILL one. Calls keep succeeding, and once the health
// check has had its interval none goes to the dead instance.
func TestResolverRoutesAroundKilledInstance(t *testing.T) {
	agent := testenv.StartConsul(t)
	a := startDiscovery(t, agent, nil, "--instance-id=discovery-a")
	b := startDiscovery(t, agent, nil, "--instance-id=discovery-b")
	testenv.WaitFor(t, 10*time.Second, "both instances passing", func() bool { return len(agent.Passing(t, "discovery")) == 2 })

	_, cli := dialConsul(t, agent, serviceKey)
	call := func() (string, error) {
		var p peer.Peer
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err := cli.Discover(ctx, &discoveryv1.DiscoverRequest{Name: "discovery"}, grpc.Peer(&p))
		if p.Addr == nil {
			return "", err
		}
		return p.Addr.String(), err
	}
	seen := map[string]int{}
	testenv.WaitFor(t, 10*time.Second, "round robin over both instances", func() bool {
		addr, err := call()
		if err != nil {
			t.Fatalf("call before kill: %v", err)
		}
		seen[addr]++
		return seen[a.GRPCAddr] > 0 && seen[b.GRPCAddr] > 0
	})

	a.Signal(syscall.SIGKILL)
	a.WaitExit(5 * time.Second)
	killed := time.Now()
	const checkInterval = time.Second
	var calls, toDead int
	for time.Since(killed) < 4*checkInterval {
		addr, err := call()
		if err != nil {
			t.Fatalf("call %d after kill failed: %v", calls, err)
		}
		calls++
		if addr == a.GRPCAddr && time.Since(killed) > checkInterval {
			toDead++
		}
	}
	if toDead > 0 {
		t.Fatalf("%d of %d calls went to the killed instance after the check interval", toDead, calls)
	}
	if calls < 10 {
		t.Fatalf("only %d calls in the window", calls)
	}
	testenv.WaitFor(t, 5*checkInterval, "killed instance critical in consul", func() bool {
		return slices.Equal(agent.Passing(t, "discovery"), []string{"discovery-b"})
	})
	t.Logf("%d calls after SIGKILL, all succeeded, none to the dead instance after %v", calls, checkInterval)
}

// With no instance at all, the resolver reports an empty set: calls fail fast with Unavailable.
func TestResolverEmptySetFailsFast(t *testing.T) {
	agent := testenv.StartConsul(t)
	_, cli := dialConsul(t, agent, serviceKey)
	start := time.Now()
	_, err := cli.Discover(ctxTimeout(t, 10*time.Second), &discoveryv1.DiscoverRequest{Name: "discovery"})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("err = %v, want Unavailable", err)
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Fatalf("empty set took %v to fail; want fast failure", elapsed)
	}
}
