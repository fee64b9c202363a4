package consul

import (
	"context"
	"iter"
	"time"

	"github.com/hashicorp/consul/api"
)

// WatchOptions tune a Watch loop.
type WatchOptions struct {
	// Wait bounds each blocking query (default 5m, Consul's maximum).
	Wait time.Duration
	// Backoff after an error, doubling up to MaxBackoff (defaults 100ms and 5s).
	Backoff, MaxBackoff time.Duration
}

// Watch yields the instances of q.Name once at once and then after every catalog change, using
// blocking queries (no polling per call). Errors are yielded too, and the loop retries with backoff
// until ctx ends or the consumer stops. An index that goes backwards (agent restart, snapshot
// restore) resets the wait, as Consul's documentation advises.
func Watch(ctx context.Context, c *api.Client, q Query, o WatchOptions) iter.Seq2[Result, error] {
	if o.Wait <= 0 {
		o.Wait = 5 * time.Minute
	}
	if o.Backoff <= 0 {
		o.Backoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	return func(yield func(Result, error) bool) {
		var index uint64
		backoff := o.Backoff
		first := true
		for ctx.Err() == nil {
			res, err := Instances(ctx, c, q, index, o.Wait)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if !yield(Result{}, err) {
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, o.MaxBackoff)
				index = 0
				continue
			}
			backoff = o.Backoff
			changed := first || res.Index != index
			switch {
			case res.Index < index:
				index = 0 // went backwards: read afresh instead of waiting on a stale index
			case res.Index == 0:
				index = 1 // 0 would make every query return at once
			default:
				index = res.Index
			}
			first = false
			if changed && !yield(res, nil) {
				return
			}
		}
	}
}
