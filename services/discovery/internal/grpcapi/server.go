// Package grpcapi exposes the catalog as bourse.discovery.v1.DiscoveryService: it converts messages
// to domain values and back; validation and errors live in the domain and the runtime.
package grpcapi

import (
	"context"
	"time"

	"github.com/hashicorp/consul/api"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/bourse-dev/bourse/pkg/auth"
	"github.com/bourse-dev/bourse/pkg/consul"
	"github.com/bourse-dev/bourse/pkg/errs"
	discoveryv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/discovery/v1"
	"github.com/bourse-dev/bourse/services/discovery/internal/catalog"
)

// Policy: the catalog is the system's topology (addresses, ports, metadata), so only services and
// operators read it; changing it is for operators (services register with Consul themselves). Every
// method is listed: a missing one is refused to everyone.
var Policy = auth.Policy{
	discoveryv1.DiscoveryService_Discover_FullMethodName:   auth.AnyService,
	discoveryv1.DiscoveryService_Watch_FullMethodName:      auth.AnyService,
	discoveryv1.DiscoveryService_Register_FullMethodName:   auth.AdminOnly,
	discoveryv1.DiscoveryService_Deregister_FullMethodName: auth.AdminOnly,
}

// Server implements discoveryv1.DiscoveryServiceServer.
type Server struct {
	discoveryv1.UnimplementedDiscoveryServiceServer
	catalog  *catalog.Catalog
	draining <-chan struct{}
}

// New returns the gRPC server; draining ends long polls and watches when shutdown begins.
func New(c *catalog.Catalog, draining <-chan struct{}) *Server {
	return &Server{catalog: c, draining: draining}
}

func (s *Server) Register(ctx context.Context, req *discoveryv1.RegisterRequest) (*discoveryv1.RegisterResponse, error) {
	check, err := checkFromProto(req.GetCheck())
	if err != nil {
		return nil, err
	}
	inst, err := s.catalog.Register(ctx, catalog.Registration{
		ID: req.GetId(), Name: req.GetName(), Address: req.GetAddress(), Port: req.GetPort(),
		Tags: req.GetTags(), Meta: req.GetMetadata(), Check: check,
	})
	if err != nil {
		return nil, err
	}
	return &discoveryv1.RegisterResponse{Instance: instanceToProto(inst)}, nil
}

func (s *Server) Deregister(ctx context.Context, req *discoveryv1.DeregisterRequest) (*discoveryv1.DeregisterResponse, error) {
	if err := s.catalog.Deregister(ctx, req.GetId()); err != nil {
		return nil, err
	}
	return &discoveryv1.DeregisterResponse{}, nil
}

func (s *Server) Discover(ctx context.Context, req *discoveryv1.DiscoverRequest) (*discoveryv1.DiscoverResponse, error) {
	wait, err := duration("wait_time", req.GetWaitTime())
	if err != nil {
		return nil, err
	}
	snap, err := s.catalog.Discover(ctx, catalog.Query{
		Name:             req.GetName(),
		Filter:           catalog.Filter{Tags: req.GetTags(), Meta: req.GetMetadata()},
		IncludeUnhealthy: req.GetIncludeUnhealthy(),
		WaitIndex:        req.GetWaitIndex(),
		WaitTime:         wait,
	}, s.draining)
	if err != nil {
		return nil, err
	}
	return &discoveryv1.DiscoverResponse{Instances: instancesToProto(snap.Instances), Index: snap.Index}, nil
}

func (s *Server) Watch(req *discoveryv1.WatchRequest, stream discoveryv1.DiscoveryService_WatchServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	snapshots, err := s.catalog.Watch(ctx, catalog.Query{
		Name:             req.GetName(),
		Filter:           catalog.Filter{Tags: req.GetTags(), Meta: req.GetMetadata()},
		IncludeUnhealthy: req.GetIncludeUnhealthy(),
	})
	if err != nil {
		return err
	}
	go func() {
		select {
		case <-s.draining:
			cancel()
		case <-ctx.Done():
		}
	}()
	for snap, err := range snapshots {
		if err != nil {
			return err
		}
		if err := stream.Send(&discoveryv1.WatchResponse{Instances: instancesToProto(snap.Instances), Index: snap.Index}); err != nil {
			return err
		}
	}
	if stream.Context().Err() == nil {
		return errs.New(errs.KindUnavailable, "server is shutting down; watch again to reach another instance")
	}
	return stream.Context().Err()
}

func checkFromProto(c *discoveryv1.HealthCheck) (consul.Check, error) {
	var out consul.Check
	switch c.GetKind() {
	case discoveryv1.CheckKind_CHECK_KIND_UNSPECIFIED, discoveryv1.CheckKind_CHECK_KIND_GRPC:
		out.Kind = consul.CheckGRPC
	case discoveryv1.CheckKind_CHECK_KIND_TCP:
		out.Kind = consul.CheckTCP
	case discoveryv1.CheckKind_CHECK_KIND_HTTP:
		out.Kind = consul.CheckHTTP
	case discoveryv1.CheckKind_CHECK_KIND_NONE:
		out.Kind = consul.CheckNone
	default:
		return out, errs.Invalid("check.kind", "unknown check kind %d", c.GetKind())
	}
	out.Target = c.GetTarget()
	var err error
	if out.Interval, err = duration("check.interval", c.GetInterval()); err != nil {
		return out, err
	}
	if out.Timeout, err = duration("check.timeout", c.GetTimeout()); err != nil {
		return out, err
	}
	if out.DeregisterAfter, err = duration("check.deregister_critical_after", c.GetDeregisterCriticalAfter()); err != nil {
		return out, err
	}
	return out, nil
}

// duration converts an optional Duration; absent is zero (the domain's default).
func duration(field string, d *durationpb.Duration) (time.Duration, error) {
	if d == nil {
		return 0, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, errs.Invalid(field, "%v", err)
	}
	if d.AsDuration() < 0 {
		return 0, errs.Invalid(field, "is negative")
	}
	return d.AsDuration(), nil
}

func instancesToProto(in []consul.Instance) []*discoveryv1.ServiceInstance {
	out := make([]*discoveryv1.ServiceInstance, len(in))
	for i, inst := range in {
		out[i] = instanceToProto(inst)
	}
	return out
}

func instanceToProto(inst consul.Instance) *discoveryv1.ServiceInstance {
	return &discoveryv1.ServiceInstance{
		Id: inst.ID, Name: inst.Name, Address: inst.Address, Port: uint32(inst.Port),
		Tags: inst.Tags, Metadata: inst.Meta, Node: inst.Node, Health: healthToProto(inst.Health),
	}
}

func healthToProto(h string) discoveryv1.HealthStatus {
	switch h {
	case api.HealthPassing:
		return discoveryv1.HealthStatus_HEALTH_STATUS_PASSING
	case api.HealthWarning:
		return discoveryv1.HealthStatus_HEALTH_STATUS_WARNING
	case api.HealthCritical:
		return discoveryv1.HealthStatus_HEALTH_STATUS_CRITICAL
	}
	return discoveryv1.HealthStatus_HEALTH_STATUS_UNSPECIFIED
}
