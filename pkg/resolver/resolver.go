// Package resolver implements the consul:/// gRPC name resolver: "consul:///risk" resolves to the
// passing instances of service "risk" and follows changes through Consul blocking queries, so a call
// costs no Consul request. "consul://127.0.0.1:8600/risk?tag=v2" names another agent and filters
// by tag (repeatable; every tag must be present).
package resolver

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/hashicorp/consul/api"
	grpcresolver "google.golang.org/grpc/resolver"

	"github.com/bourse-dev/bourse/pkg/consul"
)

// Scheme is the URI scheme of the resolver.
const Scheme = "consul"

// Builder builds consul resolvers. Targets without an authority use the default client.
type Builder struct {
	client *api.Client
	logger *slog.Logger
	wait   consul.WatchOptions

	mu      sync.Mutex
	clients map[string]*api.Client // per authority
}

// NewBuilder returns a builder whose targets without authority go to client.
func NewBuilder(client *api.Client, logger *slog.Logger) *Builder {
	if logger == nil {
		logger = slog.Default()
	}
	return &Builder{client: client, logger: logger, clients: map[string]*api.Client{}}
}

// Scheme implements resolver.Builder.
func (b *Builder) Scheme() string { return Scheme }

// Build implements resolver.Builder.
func (b *Builder) Build(target grpcresolver.Target, cc grpcresolver.ClientConn, _ grpcresolver.BuildOptions) (grpcresolver.Resolver, error) {
	name := target.Endpoint()
	if name == "" {
		return nil, fmt.Errorf("consul resolver: target %q names no service", target.URL.String())
	}
	client, err := b.clientFor(target.URL.Host)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &consulResolver{cancel: cancel, done: make(chan struct{})}
	go r.run(ctx, client, cc, name, target.URL.Query()["tag"], b.wait, b.logger.With("service", name))
	return r, nil
}

func (b *Builder) clientFor(authority string) (*api.Client, error) {
	if authority == "" {
		return b.client, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if c, ok := b.clients[authority]; ok {
		return c, nil
	}
	c, err := consul.NewClient(authority)
	if err != nil {
		return nil, err
	}
	b.clients[authority] = c
	return c, nil
}

type consulResolver struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (r *consulResolver) run(ctx context.Context, c *api.Client, cc grpcresolver.ClientConn, name string, tags []string, wait consul.WatchOptions, log *slog.Logger) {
	defer close(r.done)
	resolved := false
	for res, err := range consul.Watch(ctx, c, consul.Query{Name: name}, wait) {
		if err != nil {
			// Before the first answer, fail calls fast; afterwards keep the last known set while
			// the watch retries, rather than dropping healthy backends because Consul blinked.
			if !resolved {
				cc.ReportError(fmt.Errorf("consul resolver: %s: %w", name, err))
			}
			log.Warn("consul watch failed; retrying", "err", err)
			continue
		}
		resolved = true
		// An empty state makes round robin fail calls at once with Unavailable instead of hanging.
		_ = cc.UpdateState(State(res.Instances, tags))
	}
}

// State converts passing instances into a resolver state, keeping those with every tag.
func State(instances []consul.Instance, tags []string) grpcresolver.State {
	var st grpcresolver.State
	for _, inst := range instances {
		if !hasAll(inst.Tags, tags) {
			continue
		}
		addr := grpcresolver.Address{Addr: inst.HostPort()}
		st.Addresses = append(st.Addresses, addr)
		st.Endpoints = append(st.Endpoints, grpcresolver.Endpoint{Addresses: []grpcresolver.Address{addr}})
	}
	return st
}

func hasAll(have, want []string) bool {
	for _, t := range want {
		if !slices.Contains(have, t) {
			return false
		}
	}
	return true
}

// ResolveNow is a no-op: the blocking query already reports every change.
func (r *consulResolver) ResolveNow(grpcresolver.ResolveNowOptions) {}

// Close stops the watch and waits for it to end.
func (r *consulResolver) Close() {
	r.cancel()
	<-r.done
}
