// Command discovery serves bourse.discovery.v1.DiscoveryService over the local Consul agent.
package main

import (
	"context"
	"os"

	"google.golang.org/grpc"

	discoveryv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/discovery/v1"
	"github.com/bourse-dev/bourse/pkg/server"
	"github.com/bourse-dev/bourse/services/discovery/internal/catalog"
	"github.com/bourse-dev/bourse/services/discovery/internal/grpcapi"
)

func main() {
	app := server.NewApp("discovery", server.Defaults{GRPCAddr: "127.0.0.1:7001", MetricsAddr: "127.0.0.1:9101"})
	os.Exit(app.Main(func(_ context.Context, env *server.Env) (server.Service, error) {
		cat := catalog.New(env.Consul)
		api := grpcapi.New(cat, env.Draining)
		return server.Service{
			Register: func(s grpc.ServiceRegistrar) { discoveryv1.RegisterDiscoveryServiceServer(s, api) },
			Policy:   grpcapi.Policy,
			Close:    func(context.Context) error { cat.Close(); return nil },
		}, nil
	}))
}
