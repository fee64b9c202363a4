package telemetry

import (
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
)

// TracedRPC decides which RPCs get spans: everything but health checks and reflection. Consul
// checks every instance every few seconds and grpcurl lists services by reflection; traced, they
// were most of the traces and buried the ones a person looks for.
var TracedRPC otelgrpc.Filter = filters.None(
	filters.ServiceName("grpc.health.v1.Health"),
	filters.ServicePrefix("grpc.reflection."),
)

// ServerHandlerOptions and ClientHandlerOptions are the otelgrpc options every bourse server and
// client uses.
func ServerHandlerOptions() []otelgrpc.Option {
	return []otelgrpc.Option{otelgrpc.WithFilter(TracedRPC)}
}
func ClientHandlerOptions() []otelgrpc.Option {
	return []otelgrpc.Option{otelgrpc.WithFilter(TracedRPC)}
}
