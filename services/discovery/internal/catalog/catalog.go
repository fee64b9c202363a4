// Package catalog is the discovery service's domain: validated registrations, filtered reads and
// change streams over the Consul catalog.
package catalog

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/bourse-dev/bourse/pkg/consul"
	"github.com/bourse-dev/bourse/pkg/errs"
)

// Registration is a request to add an instance.
type Registration struct {
	ID      string
	Name    string
	Address string
	Port    uint32
	Tags    []string
	Meta    map[string]string
	Check   consul.Check
}

// Filter narrows the instances of a service: every tag present, every metadata pair equal.
type Filter struct {
	Tags []string
	Meta map[string]string
}

// Matches reports whether inst passes the filter.
func (f Filter) Matches(inst consul.Instance) bool {
	for _, t := range f.Tags {
		if !slices.Contains(inst.Tags, t) {
			return false
		}
	}
	for k, v := range f.Meta {
		if got, ok := inst.Meta[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Query selects instances of one service.
type Query struct {
	Name             string
	Filter           Filter
	IncludeUnhealthy bool
	// WaitIndex > 0 makes Discover a long poll until the catalog index passes it or WaitTime ends.
	WaitIndex uint64
	WaitTime  time.Duration
}

// Snapshot is a filtered answer, sorted by instance id.
type Snapshot struct {
	Instances []consul.Instance
	Index     uint64
}

// Catalog serves registrations and queries from a Consul agent. Reads come from a cache that one
// blocking query per service keeps current.
type Catalog struct {
	consul *api.Client
	cache  *cache
	stop   chan struct{}
	done   chan struct{}
}

// IdleWatchTimeout is how long a service's cached watch outlives its last reader.
const IdleWatchTimeout = time.Minute

// New returns a catalog backed by the agent behind c. Close stops its watches.
func New(c *api.Client) *Catalog {
	cat := &Catalog{consul: c, cache: newCache(c, IdleWatchTimeout), stop: make(chan struct{}), done: make(chan struct{})}
	go cat.janitor()
	return cat
}

func (c *Catalog) janitor() {
	defer close(c.done)
	tick := time.NewTicker(IdleWatchTimeout / 4)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case now := <-tick.C:
			c.cache.evictIdle(now)
		}
	}
}

// Close stops every watch.
func (c *Catalog) Close() {
	close(c.stop)
	<-c.done
	c.cache.close()
}

// Register validates r and adds (or replaces) the instance.
func (c *Catalog) Register(ctx context.Context, r Registration) (consul.Instance, error) {
	if err := validateName("name", r.Name); err != nil {
		return consul.Instance{}, err
	}
	if err := validateAddress(r.Address); err != nil {
		return consul.Instance{}, err
	}
	if err := validatePort(r.Port); err != nil {
		return consul.Instance{}, err
	}
	if r.ID == "" {
		r.ID = fmt.Sprintf("%s-%s-%d", r.Name, r.Address, r.Port)
	}
	if err := validateID(r.ID); err != nil {
		return consul.Instance{}, err
	}
	if err := validateTags(r.Tags); err != nil {
		return consul.Instance{}, err
	}
	if err := validateMeta(r.Meta); err != nil {
		return consul.Instance{}, err
	}
	if err := validateCheck(&r.Check); err != nil {
		return consul.Instance{}, err
	}
	inst := consul.Instance{
		ID: r.ID, Name: r.Name, Address: r.Address, Port: int(r.Port),
		Tags: slices.Clone(r.Tags), Meta: maps.Clone(r.Meta), Check: r.Check,
	}
	if err := consul.Register(ctx, c.consul, inst); err != nil {
		return consul.Instance{}, consulError("register", err)
	}
	c.cache.refresh(ctx, inst.Name)
	return inst, nil
}

// Deregister removes an instance by id.
func (c *Catalog) Deregister(ctx context.Context, id string) error {
	if id == "" {
		return errs.Invalid("id", "is required")
	}
	if err := validateID(id); err != nil {
		return err
	}
	name, err := c.serviceOf(ctx, id)
	if err != nil {
		return err
	}
	if err := consul.Deregister(ctx, c.consul, id); err != nil {
		return consulError("deregister", err)
	}
	c.cache.refresh(ctx, name)
	return nil
}

// Discover answers q from the cache. A long poll (WaitIndex > 0) waits for an answer past that
// index, WaitTime, or interrupt (server draining) — whichever comes first — and then answers with the
// current set, so in-flight calls complete during a drain instead of being cut.
func (c *Catalog) Discover(ctx context.Context, q Query, interrupt <-chan struct{}) (Snapshot, error) {
	if err := validateQuery(&q); err != nil {
		return Snapshot{}, err
	}
	e := c.cache.acquire(consul.Query{Name: q.Name, IncludeUnhealthy: q.IncludeUnhealthy})
	defer c.cache.release(e)
	res, changed, err := e.wait(ctx)
	if err != nil {
		return Snapshot{}, consulError("discover", err)
	}
	if q.WaitIndex > 0 {
		timeout := time.NewTimer(q.WaitTime)
		defer timeout.Stop()
	wait:
		for res.Index <= q.WaitIndex {
			select {
			case <-changed:
				res, changed, _ = e.wait(ctx)
			case <-timeout.C:
				break wait
			case <-interrupt:
				break wait
			case <-ctx.Done():
				return Snapshot{}, ctx.Err()
			}
		}
	}
	return snapshot(res, q.Filter), nil
}

// Watch yields the filtered set at once and again each time it changes. Consul being unreachable is
// an error before the first set; afterwards the cache's watch retries and the stream stays open.
func (c *Catalog) Watch(ctx context.Context, q Query) (iter.Seq2[Snapshot, error], error) {
	q.WaitIndex, q.WaitTime = 0, 0
	if err := validateQuery(&q); err != nil {
		return nil, err
	}
	return func(yield func(Snapshot, error) bool) {
		e := c.cache.acquire(consul.Query{Name: q.Name, IncludeUnhealthy: q.IncludeUnhealthy})
		defer c.cache.release(e)
		res, changed, err := e.wait(ctx)
		if err != nil {
			yield(Snapshot{}, consulError("watch", err))
			return
		}
		var last []consul.Instance
		for sent := false; ; {
			snap := snapshot(res, q.Filter)
			if !sent || !slices.EqualFunc(last, snap.Instances, sameInstance) {
				if !yield(snap, nil) {
					return
				}
				last, sent = snap.Instances, true
			}
			select {
			case <-changed:
				if res, changed, err = e.wait(ctx); err != nil {
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}, nil
}

// serviceOf finds which service an instance id belongs to on the local agent.
func (c *Catalog) serviceOf(ctx context.Context, id string) (string, error) {
	svc, _, err := c.consul.Agent().Service(id, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		if se, ok := errors.AsType[api.StatusError](err); ok && se.Code == http.StatusNotFound {
			return "", errs.Wrap(errs.KindNotFound, consul.ErrUnknownInstance, "deregister %q", id)
		}
		return "", consulError("deregister", err)
	}
	return svc.Service, nil
}

func validateQuery(q *Query) error {
	if err := validateName("name", q.Name); err != nil {
		return err
	}
	if err := validateFilter(q.Filter); err != nil {
		return err
	}
	if q.WaitTime < 0 || q.WaitTime > maxWait {
		return errs.Invalid("wait_time", "%v is outside 0-%v", q.WaitTime, maxWait)
	}
	if q.WaitIndex > 0 && q.WaitTime == 0 {
		q.WaitTime = DefaultWait
	}
	return nil
}

func snapshot(res consul.Result, f Filter) Snapshot {
	out := Snapshot{Index: res.Index}
	for _, inst := range res.Instances {
		if f.Matches(inst) {
			out.Instances = append(out.Instances, inst)
		}
	}
	slices.SortFunc(out.Instances, func(a, b consul.Instance) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

func sameInstance(a, b consul.Instance) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Address == b.Address && a.Port == b.Port &&
		a.Node == b.Node && a.Health == b.Health && slices.Equal(a.Tags, b.Tags) && maps.Equal(a.Meta, b.Meta)
}

// consulError classifies an agent failure: its 4xx answers are the caller's fault, anything else
// means Consul is unavailable.
func consulError(op string, err error) error {
	if errors.Is(err, consul.ErrUnknownInstance) {
		return errs.Wrap(errs.KindNotFound, err, "%s", op)
	}
	if se, ok := errors.AsType[api.StatusError](err); ok {
		switch se.Code {
		case http.StatusBadRequest:
			return errs.Wrap(errs.KindInvalidArgument, err, "%s rejected by consul", op)
		case http.StatusNotFound:
			return errs.Wrap(errs.KindNotFound, err, "%s", op)
		case http.StatusForbidden:
			return errs.Wrap(errs.KindPermissionDenied, err, "%s denied by consul", op)
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return errs.Wrap(errs.KindUnavailable, err, "%s: consul unavailable", op)
}
