package catalog

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/bourse-dev/bourse/pkg/consul"
	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

func countingClient(t *testing.T, addr string) (*api.Client, *countingTransport) {
	counter := &countingTransport{}
	cfg := api.DefaultConfig()
	cfg.Address = addr
	cfg.HttpClient = &http.Client{Transport: counter}
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, counter
}

// Reads come from one cached blocking query per service: a thousand Discovers and fifty watchers of
// one service cost a handful of Consul requests, and a registration reaches all of them.
func TestReadsShareOneWatchPerService(t *testing.T) {
	agent := testenv.StartConsul(t)
	client, counter := countingClient(t, agent.Addr)
	cat := New(client)
	defer cat.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if _, err := cat.Register(ctx, Registration{ID: "api-1", Name: "api", Address: "127.0.0.1", Port: 1, Check: consul.Check{Kind: consul.CheckNone}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.Discover(ctx, Query{Name: "api"}, nil); err != nil {
		t.Fatal(err)
	}
	before := counter.n.Load()
	for range 1000 {
		snap, err := cat.Discover(ctx, Query{Name: "api"}, nil)
		if err != nil || len(snap.Instances) != 1 {
			t.Fatalf("discover: %v %v", snap, err)
		}
	}
	if n := counter.n.Load() - before; n > 3 {
		t.Fatalf("1000 cached Discovers made %d Consul requests", n)
	}

	const watchers = 50
	var wg sync.WaitGroup
	got := make(chan int, watchers)
	for range watchers {
		seq, err := cat.Watch(ctx, Query{Name: "api"})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for snap, err := range seq {
				if err != nil {
					t.Error(err)
					return
				}
				if len(snap.Instances) == 2 {
					got <- 2
					return
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	if n := cat.cache.size(); n != 1 {
		t.Fatalf("%d cache entries for one service", n)
	}
	if _, err := cat.Register(ctx, Registration{ID: "api-2", Name: "api", Address: "127.0.0.1", Port: 2, Check: consul.Check{Kind: consul.CheckNone}}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if len(got) != watchers {
		t.Fatalf("%d of %d watchers saw the registration", len(got), watchers)
	}

	// Idle entries are evicted; the next read starts afresh.
	cat.cache.evictIdle(time.Now().Add(2 * IdleWatchTimeout))
	if n := cat.cache.size(); n != 0 {
		t.Fatalf("%d entries survived eviction", n)
	}
	snap, err := cat.Discover(ctx, Query{Name: "api"}, nil)
	if err != nil || len(snap.Instances) != 2 {
		t.Fatalf("after eviction: %v %v", snap, err)
	}
}

// A Discover right after the caller's own Register or Deregister sees it.
func TestReadYourWrites(t *testing.T) {
	agent := testenv.StartConsul(t)
	cat := New(agent.Client)
	defer cat.Close()
	ctx := context.Background()
	if _, err := cat.Discover(ctx, Query{Name: "rw"}, nil); err != nil { // warm the cache
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := cat.Register(ctx, Registration{ID: "rw-1", Name: "rw", Address: "127.0.0.1", Port: 1, Check: consul.Check{Kind: consul.CheckNone}}); err != nil {
			t.Fatal(err)
		}
		if snap, _ := cat.Discover(ctx, Query{Name: "rw"}, nil); len(snap.Instances) != 1 {
			t.Fatalf("round %d: own registration not visible", i)
		}
		if err := cat.Deregister(ctx, "rw-1"); err != nil {
			t.Fatal(err)
		}
		if snap, _ := cat.Discover(ctx, Query{Name: "rw"}, nil); len(snap.Instances) != 0 {
			t.Fatalf("round %d: own deregistration not visible", i)
		}
	}
}

// With Consul unreachable, the first read fails as Unavailable rather than hanging.
func TestUnreachableConsulIsUnavailable(t *testing.T) {
	client, _ := countingClient(t, "127.0.0.1:1")
	cat := New(client)
	defer cat.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := cat.Discover(ctx, Query{Name: "x"}, nil)
	if errs.KindOf(err) != errs.KindUnavailable {
		t.Fatalf("err = %v, want Unavailable", err)
	}
}
