package cli

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/hashicorp/consul/api"
	"google.golang.org/grpc"

	"github.com/bourse-dev/bourse/pkg/client"
	"github.com/bourse-dev/bourse/pkg/consul"
	"github.com/bourse-dev/bourse/pkg/resolver"
)

// conns dials each service once, on first use.
type conns struct {
	g        *globals
	consul   *api.Client
	resolver *resolver.Builder

	mu   sync.Mutex
	open map[string]*grpc.ClientConn
}

func newConns(g *globals) (*conns, error) {
	c, err := consul.NewClient(g.consul)
	if err != nil {
		return nil, usageError("--consul %q: %v", g.consul, err)
	}
	return &conns{g: g, consul: c, resolver: resolver.NewBuilder(c, slog.New(slog.DiscardHandler)),
		open: map[string]*grpc.ClientConn{}}, nil
}

// target is where calls to service go: its --addr, else consul:///service.
func (c *conns) target(service string) (string, error) {
	addr, ok, err := c.g.addrOverride(service)
	if err != nil || ok {
		return addr, err
	}
	return resolver.Scheme + ":///" + service, nil
}

// where describes target for error messages: the address, or which Consul was asked.
func (c *conns) where(service string) string {
	t, err := c.target(service)
	if err != nil {
		return "?"
	}
	if addr, ok, _ := c.g.addrOverride(service); ok {
		return addr
	}
	return fmt.Sprintf("%s (Consul %s)", t, c.g.consul)
}

func (c *conns) dial(service string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc, ok := c.open[service]; ok {
		return cc, nil
	}
	target, err := c.target(service)
	if err != nil {
		return nil, err
	}
	cc, err := client.Dial(target, client.Options{Resolver: c.resolver, APIKey: c.g.apiKey})
	if err != nil {
		return nil, &exitError{ExitUnreachable, fmt.Sprintf("%s: %v", service, err)}
	}
	c.open[service] = cc
	return cc, nil
}

func (c *conns) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cc := range c.open {
		cc.Close()
	}
}

// call runs fn against service's connection and turns its error into an exit code and a message.
func call[T any](g *globals, service string, fn func(*grpc.ClientConn) (T, error)) (T, error) {
	var zero T
	cc, err := g.conns.dial(service)
	if err != nil {
		return zero, err
	}
	v, err := fn(cc)
	if err != nil {
		return zero, explain(err, service, g.conns.where(service))
	}
	return v, nil
}
