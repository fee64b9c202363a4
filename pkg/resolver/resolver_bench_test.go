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

// BenchmarkRPC compares a unary call through consul:/// (three instances, round robin) with the same
// call to a fixed address. The difference is what the resolver costs per call; consul-req/op shows
// calls never touch Consul.
func BenchmarkRPC(b *testing.B) {
	agent := testenv.StartConsul(b)
	addrs := startBackends(b, agent, "bench", 3)

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
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := hc.Check(ctx, req); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		b.ReportMetric(float64(counter.n.Load()-before)/float64(b.N), "consul-req/op")
	}
	b.Run("direct", func(b *testing.B) { run(b, addrs[0], client.Options{}) })
	b.Run("consul-resolver", func(b *testing.B) {
		run(b, "consul:///bench", client.Options{Resolver: resolver.NewBuilder(counted, nil)})
	})
}
