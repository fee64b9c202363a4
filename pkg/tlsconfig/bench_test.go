package tlsconfig_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/bourse-dev/bourse/pkg/tlsconfig"
)

// BenchmarkUnary is the steady-state cost of mutual TLS on a unary call over loopback: the handshake
// happens once per connection, before the timer starts, so what is left is record encryption.
// cpu-ns/op is the process's CPU time (client and server both run here) per call: on a shared
// machine it varies less than the wall time.
func BenchmarkUnary(b *testing.B) {
	dir := pki(b, "risk", "matching")
	risk := load(b, tlsconfig.FilesIn(dir, "risk"))
	matching := load(b, tlsconfig.FilesIn(dir, "matching"))
	for _, bc := range []struct {
		name           string
		server, client credentials.TransportCredentials
	}{
		{"plaintext", insecure.NewCredentials(), insecure.NewCredentials()},
		{"mtls", risk.ServerCredentials(), matching.ClientCredentials("risk")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv := serve(b, bc.server)
			conn, err := grpc.NewClient(srv.addr, grpc.WithTransportCredentials(bc.client))
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			hc := healthpb.NewHealthClient(conn)
			ctx := context.Background()
			if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			cpu := cpuTime(b)
			for b.Loop() {
				if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime(b)-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkConnect is the per-connection cost: a new connection and one call each time, so the
// difference between the two is the handshake.
func BenchmarkConnect(b *testing.B) {
	dir := pki(b, "risk", "matching")
	for _, bc := range []struct {
		name           string
		server, client credentials.TransportCredentials
	}{
		{"plaintext", insecure.NewCredentials(), insecure.NewCredentials()},
		{"mtls", load(b, tlsconfig.FilesIn(dir, "risk")).ServerCredentials(), load(b, tlsconfig.FilesIn(dir, "matching")).ClientCredentials("risk")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv := serve(b, bc.server)
			b.ReportAllocs()
			cpu := cpuTime(b)
			for b.Loop() {
				if err := check(b, srv.addr, bc.client); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime(b)-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
