// Package consul is bourse's one way to talk to the Consul agent: registering instances with a health
// check, and reading or watching the healthy instances of a service with blocking queries.
package consul

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/consul/api"
)

// DefaultAddr is the local agent's HTTP API address used by `make run`.
const DefaultAddr = "127.0.0.1:8500"

// NewClient returns a client for the agent at addr ("host:port" or a URL).
func NewClient(addr string) (*api.Client, error) {
	cfg := api.DefaultNonPooledConfig()
	cfg.Address = addr
	// Blocking queries hold a connection for up to their wait time; keep several idle per host so
	// concurrent watchers don't redial.
	cfg.Transport.MaxIdleConnsPerHost = 64
	return api.NewClient(cfg)
}

// CheckKind is how Consul decides an instance is healthy.
type CheckKind int

const (
	CheckGRPC CheckKind = iota // grpc.health.v1 Check on address:port
	CheckTCP
	CheckHTTP
	CheckNone
)

// Check configures an instance's health check.
type Check struct {
	Kind CheckKind
	// HTTP: the URL. gRPC: an optional service name passed to grpc.health.v1.Health/Check.
	Target string
	// TLSServerName, for a gRPC check, makes the agent connect with TLS and require a certificate
	// naming it. A service serving mutual TLS needs the agent to present a client certificate from
	// its CA: the agent's tls.internal_rpc certificate with enable_agent_tls_for_checks = true.
	TLSServerName   string
	Interval        time.Duration
	Timeout         time.Duration
	DeregisterAfter time.Duration
}

// Instance is one registered endpoint of a service.
type Instance struct {
	ID      string
	Name    string
	Address string
	Port    int
	Tags    []string
	Meta    map[string]string
	Check   Check
	// Filled in by queries:
	Node   string
	Health string // api.HealthPassing, api.HealthWarning or api.HealthCritical
}

// HostPort is the instance's dialable address.
func (i Instance) HostPort() string { return net.JoinHostPort(i.Address, strconv.Itoa(i.Port)) }

// ErrUnknownInstance is returned when deregistering an id the agent does not have.
var ErrUnknownInstance = errors.New("unknown service instance")

// Register adds or replaces the instance on the local agent.
func Register(ctx context.Context, c *api.Client, inst Instance) (err error) {
	ctx, end := span(ctx, "register", inst.Name)
	defer func() { end(err) }()
	reg := &api.AgentServiceRegistration{
		ID:      inst.ID,
		Name:    inst.Name,
		Address: inst.Address,
		Port:    inst.Port,
		Tags:    inst.Tags,
		Meta:    inst.Meta,
	}
	if chk := agentCheck(inst); chk != nil {
		reg.Check = chk
	}
	opts := api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(ctx)
	return c.Agent().ServiceRegisterOpts(reg, opts)
}

func agentCheck(inst Instance) *api.AgentServiceCheck {
	chk := &api.AgentServiceCheck{
		CheckID:                        "service:" + inst.ID,
		Interval:                       inst.Check.Interval.String(),
		Timeout:                        inst.Check.Timeout.String(),
		DeregisterCriticalServiceAfter: inst.Check.DeregisterAfter.String(),
	}
	switch inst.Check.Kind {
	case CheckGRPC:
		chk.Name = "gRPC health"
		chk.GRPC = inst.HostPort()
		if inst.Check.Target != "" {
			chk.GRPC += "/" + inst.Check.Target
		}
		if inst.Check.TLSServerName != "" {
			chk.GRPCUseTLS, chk.TLSServerName = true, inst.Check.TLSServerName
		}
	case CheckTCP:
		chk.Name = "TCP connect"
		chk.TCP = inst.HostPort()
	case CheckHTTP:
		chk.Name = "HTTP GET"
		chk.HTTP = inst.Check.Target
		chk.Method = http.MethodGet
	case CheckNone:
		return nil
	}
	return chk
}

// Deregister removes an instance from the local agent.
func Deregister(ctx context.Context, c *api.Client, id string) (err error) {
	ctx, end := span(ctx, "deregister", id)
	defer func() { end(err) }()
	err = c.Agent().ServiceDeregisterOpts(id, (&api.QueryOptions{}).WithContext(ctx))
	if statusErr, ok := errors.AsType[api.StatusError](err); ok && statusErr.Code == http.StatusNotFound {
		return fmt.Errorf("%w: %q", ErrUnknownInstance, id)
	}
	return err
}

// Query selects instances of one service.
type Query struct {
	Name             string
	IncludeUnhealthy bool
}

// Result is one answer of the catalog.
type Result struct {
	Instances []Instance
	Index     uint64
}

// Instances reads the instances of q.Name. With waitIndex > 0 it blocks until the index passes it or
// wait elapses (Consul adds up to wait/16 of jitter).
func Instances(ctx context.Context, c *api.Client, q Query, waitIndex uint64, wait time.Duration) (_ Result, err error) {
	ctx, end := span(ctx, "health.service", q.Name)
	defer func() { end(err) }()
	opts := (&api.QueryOptions{WaitIndex: waitIndex, WaitTime: wait}).WithContext(ctx)
	entries, meta, err := c.Health().Service(q.Name, "", !q.IncludeUnhealthy, opts)
	if err != nil {
		return Result{}, err
	}
	out := Result{Index: meta.LastIndex, Instances: make([]Instance, 0, len(entries))}
	for _, e := range entries {
		addr := e.Service.Address
		if addr == "" {
			addr = e.Node.Address
		}
		out.Instances = append(out.Instances, Instance{
			ID:      e.Service.ID,
			Name:    e.Service.Service,
			Address: addr,
			Port:    e.Service.Port,
			Tags:    e.Service.Tags,
			Meta:    e.Service.Meta,
			Node:    e.Node.Node,
			Health:  e.Checks.AggregatedStatus(),
		})
	}
	return out, nil
}
