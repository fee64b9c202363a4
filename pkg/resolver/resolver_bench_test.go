package resolver_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/consul/api"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/bourse-dev/bourse/pkg/client"
	"github.com/bourse-dev/bourse/pkg/consul"
	"github.com/bourse-dev/bourse/pkg/resolver"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

type countingTransport struct {
	base http.RoundTripper
	n    atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}

// startBackends serves grpc.health.v1 on n loopback ports and registers them as service "bench" with
// ids prefix-0, prefix-1, ... and the given tags.
func startBackends(tb testing.TB, agent *testenv.ConsulAgent, prefix string, n int, tags ...string) []string {
	tb.Helper()
	var addrs []string
	for i := range n {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		s := grpc.NewServer()
		healthpb.RegisterHealthServer(s, health.NewServer())
		go func() { _ = s.Serve(lis) }()
		tb.Cleanup(s.Stop)
		port := lis.Addr().(*net.TCPAddr).Port
		addrs = append(addrs, lis.Addr().String())
		if err := consul.Register(context.Background(), agent.Client, consul.Instance{
			ID: fmt.Sprintf("%s-%d", prefix, i), Name: "bench", Address: "127.0.0.1", Port: port, Tags: tags,
			Check: consul.Check{Kind: consul.CheckNone},
		}); err != nil {
			tb.Fatal(err)
		}
	}
	return addrs
}

// BenchmarkRPC compares a unary call to a fixed address with the same call through consul:/// to that
// one instance: the difference is what the resolver and round robin cost per call. consul-req/op
// shows that calls never touch Consul. A third run spreads calls over three instances.
func BenchmarkRPC(b *testing.B) {
	agent := testenv.StartConsul(b)
	addrs := startBackends(b, agent, "single", 1, "single")
	startBackends(b, agent, "spread", 3, "spread")

	counter := &countingTransport{base: http.DefaultTransport}
	cfg := api.DefaultConfig()
	cfg.Address = agent.Addr
	cfg.HttpClient = &http.Client{Transport: counter}
	counted, err := api.NewClient(cfg)
	if err != nil {
		b.Fatal(err)
	}

	run := func(b *testing.B, target string, o client.Options) {
		conn, err := client.Dial(target, o)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		hc := healthpb.NewHealthClient(conn)
		ctx := context.Background()
		req := &healthpb.HealthCheckRequest{}
		if _, err := hc.Check(ctx, req, grpc.WaitForReady(true)); err != nil { // resolve and connect first
			b.Fatal(err)
		}
		before := counter.n.Load()
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, err := hc.Check(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(counter.n.Load()-before)/float64(b.N), "consul-req/op")
	}
	b.Run("direct", func(b *testing.B) { run(b, addrs[0], client.Options{}) })
	b.Run("consul-1-instance", func(b *testing.B) {
		run(b, "consul:///bench?tag=single", client.Options{Resolver: resolver.NewBuilder(counted, nil)})
	})
	b.Run("consul-3-instances", func(b *testing.B) {
		run(b, "consul:///bench?tag=spread", client.Options{Resolver: resolver.NewBuilder(counted, nil)})
	})
}
