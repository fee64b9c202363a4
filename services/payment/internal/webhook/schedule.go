package webhook

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"
)

// runState is Run's bookkeeping: which claimed delivery runs next, on which worker. Only Run's
// goroutine touches it.
type runState struct {
	d       *Dispatcher
	ctx     context.Context
	wg      *sync.WaitGroup
	done    chan finished         // workers report here; holds Concurrency, so a send never blocks
	claimed map[string]bool       // delivery ids running or queued here
	total   int                   // running
	running map[string]int        // endpoint id -> running
	queued  map[string][]Delivery // endpoint id -> waiting for one of its workers
	slow    map[string]struct{}   // endpoints whose last attempt here took longer than SlowAfter
}

// finished is a worker's report: the delivery it attempted and how long the request took.
type finished struct {
	dl   Delivery
	took time.Duration
}

// maxSlowTracked bounds the slow set. Past it an arbitrary entry is forgotten: that endpoint is
// taken for a fresh one again, and costs its PerEndpoint share for one RequestTimeout to relearn.
const maxSlowTracked = 4096

func (s *runState) isSlow(ep string) bool { _, ok := s.slow[ep]; return ok }

// slowShare is how many workers the slow endpoints may hold together.
func (s *runState) slowShare() int { return max(s.d.cfg.Concurrency/2, 1) }

// slowRunning counts the attempts running for endpoints now known to be slow (an endpoint found
// slow with several in flight counts them all until they end).
func (s *runState) slowRunning() int {
	n := 0
	for ep, r := range s.running {
		if s.isSlow(ep) {
			n += r
		}
	}
	return n
}

// canStart reports whether a delivery to ep may take a worker now.
func (s *runState) canStart(ep string) bool {
	if s.total >= s.d.cfg.Concurrency {
		return false
	}
	if s.isSlow(ep) {
		return s.running[ep] == 0 && s.slowRunning() < s.slowShare()
	}
	return s.running[ep] < s.d.cfg.PerEndpoint
}

// skip lists the endpoints the store should not return now: those whose local queue is full, the
// slow ones with an attempt running and, while the slow share is taken, up to Concurrency more slow
// ones (the others, when due, are deferred by a RequestTimeout).
func (s *runState) skip() []string {
	var skip []string
	for ep, q := range s.queued {
		if len(q) >= s.d.cfg.PerEndpoint {
			skip = append(skip, ep)
		}
	}
	for ep := range s.running {
		if s.isSlow(ep) {
			skip = append(skip, ep)
		}
	}
	if s.slowRunning() >= s.slowShare() {
		n := 0
		for ep := range s.slow {
			if n == s.d.cfg.Concurrency {
				break
			}
			if s.running[ep] == 0 {
				skip = append(skip, ep)
				n++
			}
		}
	}
	return skip
}

// poll claims due deliveries for the free capacity and reports whether the store may hold more.
func (s *runState) poll() bool {
	free := 2*s.d.cfg.Concurrency - len(s.claimed)
	if free <= 0 {
		return false
	}
	batch, err := s.d.store.Due(s.ctx, DueQuery{Now: s.d.cfg.Now(), Lease: s.d.lease(), Limit: free, SkipEndpoints: s.skip()})
	if err != nil {
		if s.ctx.Err() == nil {
			s.d.cfg.Log.WarnContext(s.ctx, "webhook: reading due deliveries", "err", err)
		}
		return false
	}
	for _, dl := range batch {
		ep := dl.Endpoint.ID
		switch {
		case s.claimed[dl.ID]:
			// Claimed again while still held here (a store whose lease ran out): the attempt in
			// flight or queued will record it.
		case s.canStart(ep):
			s.start(dl)
		case s.isSlow(ep):
			// A slow endpoint keeps no queue here. With an attempt running it is skipped from the
			// next poll, so it is due again at once; without, it waits for the slow share to free.
			next := s.d.cfg.Now()
			if s.running[ep] == 0 {
				next = next.Add(s.d.cfg.RequestTimeout)
			}
			s.d.deferDelivery(s.ctx, dl, next)
		case len(s.queued[ep]) < s.d.cfg.PerEndpoint:
			s.claimed[dl.ID] = true
			s.queued[ep] = append(s.queued[ep], dl)
		default:
			// Due again at once: its endpoint is skipped from the next poll until it has room.
			s.d.deferDelivery(s.ctx, dl, s.d.cfg.Now())
		}
	}
	return len(batch) == free
}

func (s *runState) start(dl Delivery) {
	s.claimed[dl.ID] = true
	s.total++
	s.running[dl.Endpoint.ID]++
	s.wg.Go(func() {
		took := s.d.attempt(s.ctx, dl)
		s.done <- finished{dl, took}
	})
}

// finish books a finished attempt, learns whether its endpoint is slow, and starts queued
// deliveries on the freed workers.
func (s *runState) finish(f finished) {
	ep := f.dl.Endpoint.ID
	delete(s.claimed, f.dl.ID)
	s.total--
	if s.running[ep]--; s.running[ep] <= 0 {
		delete(s.running, ep)
	}
	if f.took > s.d.cfg.SlowAfter {
		if _, ok := s.slow[ep]; !ok && len(s.slow) >= maxSlowTracked {
			for e := range s.slow {
				delete(s.slow, e)
				break
			}
		}
		s.slow[ep] = struct{}{}
	} else {
		delete(s.slow, ep)
	}
	if s.ctx.Err() != nil {
		return
	}
	// Its own endpoint first (it just freed a slot there), then any other with room.
	for _, e := range append([]string{ep}, slices.Collect(maps.Keys(s.queued))...) {
		for len(s.queued[e]) > 0 && s.canStart(e) {
			next := s.queued[e][0]
			s.queued[e] = s.queued[e][1:]
			delete(s.claimed, next.ID)
			s.start(next)
		}
		if s.isSlow(e) {
			// Queued before it was found slow: handed back, due at once (it is skipped while its
			// attempt runs), rather than held here past a slot it may not get for a while.
			for _, dl := range s.queued[e] {
				delete(s.claimed, dl.ID)
				s.d.deferDelivery(s.ctx, dl, s.d.cfg.Now())
			}
			s.queued[e] = nil
		}
		if len(s.queued[e]) == 0 {
			delete(s.queued, e)
		}
	}
}

// handBack returns the queued deliveries to the store as due now, so that another replica, or this
// one restarted, takes them without waiting for their lease.
func (s *runState) handBack() {
	now := s.d.cfg.Now()
	for _, q := range s.queued {
		for _, dl := range q {
			s.d.deferDelivery(s.ctx, dl, now)
		}
	}
}
