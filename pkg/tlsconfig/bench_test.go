package tlsconfig_test

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/bourse-dev/bourse/pkg/tlsconfig"
)

// BenchmarkUnary is the steady-state cost of mutual TLS on a unary call over loopback: the handshake
// happens once per connection, before the timer starts, so what is left is record encryption.
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
			for b.Loop() {
				if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHandshake is the per-connection cost: a new connection and one call each time.
func BenchmarkHandshake(b *testing.B) {
	dir := pki(b, "risk", "matching")
	srv := serve(b, load(b, tlsconfig.FilesIn(dir, "risk")).ServerCredentials())
	creds := load(b, tlsconfig.FilesIn(dir, "matching")).ClientCredentials("risk")
	b.ReportAllocs()
	for b.Loop() {
		if err := check(b, srv.addr, creds); err != nil {
			b.Fatal(err)
		}
	}
}
