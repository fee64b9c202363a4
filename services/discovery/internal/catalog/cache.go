package catalog

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/bourse-dev/bourse/pkg/consul"
)

// cache keeps one Consul blocking query per watched service and answers every Discover and Watch of
// that service from memory, so readers cost no Consul request and a thousand watchers cost one
// query. Entries nobody has used for idleAfter are stopped.
type cache struct {
	client    *api.Client
	idleAfter time.Duration

	mu      sync.Mutex
	entries map[consul.Query]*entry
}

type entry struct {
	query  consul.Query
	cancel context.CancelFunc
	ready  chan struct{} // closed once the first answer (or first error) is in

	mu       sync.Mutex
	res      consul.Result
	err      error         // the first read failed; the entry is dropped
	changed  chan struct{} // closed and replaced on every new answer
	users    int
	lastUsed time.Time
}

func newCache(c *api.Client, idleAfter time.Duration) *cache {
	return &cache{client: c, idleAfter: idleAfter, entries: map[consul.Query]*entry{}}
}

// acquire returns the entry for q, starting its watch if needed; release it when done.
func (c *cache) acquire(q consul.Query) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[q]
	if !ok {
		ctx, cancel := context.WithCancel(context.Background())
		e = &entry{query: q, cancel: cancel, ready: make(chan struct{}), changed: make(chan struct{})}
		c.entries[q] = e
		go c.follow(ctx, e)
	}
	e.mu.Lock()
	e.users++
	e.mu.Unlock()
	return e
}

func (c *cache) release(e *entry) {
	e.mu.Lock()
	e.users--
	e.lastUsed = time.Now()
	e.mu.Unlock()
}

func (c *cache) follow(ctx context.Context, e *entry) {
	first := true
	for res, err := range consul.Watch(ctx, c.client, e.query, consul.WatchOptions{}) {
		if err != nil {
			if first {
				// Nobody has an answer yet: fail the waiting readers and let the next reader retry.
				c.drop(e)
				e.mu.Lock()
				e.err = err
				e.mu.Unlock()
				close(e.ready)
				return
			}
			continue // keep serving the last answer while the watch retries
		}
		e.publish(res)
		if first {
			first = false
			close(e.ready)
		}
	}
}

// publish installs res unless it is older than what the entry has, and wakes the readers.
func (e *entry) publish(res consul.Result) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.res.Index != 0 && res.Index < e.res.Index && res.Index != 0 {
		return
	}
	e.res = res
	close(e.changed)
	e.changed = make(chan struct{})
}

// wait returns the current answer once there is one, and a channel closed at the next change.
func (e *entry) wait(ctx context.Context) (consul.Result, <-chan struct{}, error) {
	select {
	case <-e.ready:
	case <-ctx.Done():
		return consul.Result{}, nil, ctx.Err()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.res, e.changed, e.err
}

func (c *cache) drop(e *entry) {
	c.mu.Lock()
	if c.entries[e.query] == e {
		delete(c.entries, e.query)
	}
	c.mu.Unlock()
	e.cancel()
}

// refresh reads name afresh and publishes the answer to its entries, so a caller's own registration
// is visible to its next Discover without waiting for the blocking query to return.
func (c *cache) refresh(ctx context.Context, name string) {
	for _, unhealthy := range []bool{false, true} {
		q := consul.Query{Name: name, IncludeUnhealthy: unhealthy}
		c.mu.Lock()
		e, ok := c.entries[q]
		c.mu.Unlock()
		if !ok {
			continue
		}
		if res, err := consul.Instances(ctx, c.client, q, 0, 0); err == nil {
			e.publish(res)
		}
	}
}

// evictIdle stops the watches nobody has used for idleAfter.
func (c *cache) evictIdle(now time.Time) {
	c.mu.Lock()
	var idle []*entry
	for _, e := range c.entries {
		e.mu.Lock()
		if e.users == 0 && now.Sub(e.lastUsed) > c.idleAfter {
			idle = append(idle, e)
		}
		e.mu.Unlock()
	}
	c.mu.Unlock()
	for _, e := range idle {
		c.drop(e)
	}
}

func (c *cache) close() {
	c.mu.Lock()
	entries := c.entries
	c.entries = map[consul.Query]*entry{}
	c.mu.Unlock()
	for _, e := range entries {
		e.cancel()
	}
}

func (c *cache) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
