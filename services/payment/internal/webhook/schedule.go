package webhook

import (
	"context"
	"sync"
	"time"
)

// runState is Run's bookkeeping: which claimed delivery runs next, on which worker. Only Run's
// goroutine touches it.
type runState struct {
	d       *Dispatcher
	ctx     context.Context
	wg      *sync.WaitGroup
	done    chan finished               // workers report here; holds Concurrency, so a send never blocks
	claimed map[string]bool             // delivery ids running or queued here
	total   int                         // running
	running map[string]int              // endpoint id -> running
	queued  map[string][]queuedDelivery // endpoint id -> waiting for a worker, oldest first
	seq     uint64                      // queuing order, across endpoints
	acctRun map[string]int              // account -> running, for endpoints with an account
	acctQd  map[string]int              // account -> queued, for endpoints with an account
	slow    map[string]string           // endpoint id -> its account, for the endpoints whose last attempt here took longer than SlowAfter
}

// queuedDelivery is a claimed delivery waiting for a worker; seq orders it among all the queued,
// and claimed is when the store's lease on it began.
type queuedDelivery struct {
	dl      Delivery
	seq     uint64
	claimed time.Time
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

// accountFull reports whether account a holds its PerAccount share of the workers. An endpoint
// without an account is bounded by its own share only.
func (s *runState) accountFull(a string) bool {
	return a != "" && s.acctRun[a] >= s.d.cfg.PerAccount
}

// queueCap is how many deliveries of ep may wait here for a worker: PerEndpoint, and at most half
// its account's queue, so that one endpoint's backlog, older than the rest, leaves its account's
// other endpoints room to be claimed (and then to start, oldest queued first).
func (s *runState) queueCap(ep Endpoint) int {
	if ep.Account == "" {
		return s.d.cfg.PerEndpoint
	}
	return min(s.d.cfg.PerEndpoint, max(s.d.cfg.PerAccount/2, 1))
}

// canStart reports whether a delivery to ep may take a worker now.
func (s *runState) canStart(ep Endpoint) bool {
	if s.total >= s.d.cfg.Concurrency || s.accountFull(ep.Account) {
		return false
	}
	if s.isSlow(ep.ID) {
		return s.running[ep.ID] == 0 && s.slowRunning() < s.slowShare()
	}
	return s.running[ep.ID] < s.d.cfg.PerEndpoint
}

// skip lists the endpoints and the accounts the store should not return now. Endpoints: those whose
// local queue is full, the slow ones with an attempt running and up to Concurrency more slow ones
// that could not start either (the slow share is taken, or their account's; the others, when due,
// are deferred by a RequestTimeout). Accounts: those whose local queue is full, at most
// 2×Concurrency, since the claims are.
func (s *runState) skip() (endpoints, accounts []string) {
	for ep, q := range s.queued {
		if len(q) >= s.queueCap(q[0].dl.Endpoint) {
			endpoints = append(endpoints, ep)
		}
	}
	for ep := range s.running {
		if s.isSlow(ep) {
			endpoints = append(endpoints, ep)
		}
	}
	slowFull := s.slowRunning() >= s.slowShare()
	anyAccountFull := false
	for a := range s.acctRun {
		anyAccountFull = anyAccountFull || s.accountFull(a)
	}
	n := 0
	for ep, acct := range s.slow {
		if n == s.d.cfg.Concurrency || !slowFull && !anyAccountFull {
			break
		}
		if s.running[ep] == 0 && (slowFull || s.accountFull(acct)) {
			endpoints = append(endpoints, ep)
			n++
		}
	}
	for a, q := range s.acctQd {
		if q >= s.d.cfg.PerAccount {
			accounts = append(accounts, a)
		}
	}
	return endpoints, accounts
}

// poll claims due deliveries for the free capacity and reports whether the store may hold more.
func (s *runState) poll() bool {
	free := 2*s.d.cfg.Concurrency - len(s.claimed)
	if free <= 0 {
		return false
	}
	skipEndpoints, skipAccounts := s.skip()
	batch, err := s.d.store.Due(s.ctx, DueQuery{Now: s.d.cfg.Now(), Lease: s.d.lease(), Limit: free,
		SkipEndpoints: skipEndpoints, SkipAccounts: skipAccounts})
	if err != nil {
		if s.ctx.Err() == nil {
			s.d.cfg.Log.WarnContext(s.ctx, "webhook: reading due deliveries", "err", err)
		}
		return false
	}
	for _, dl := range batch {
		ep, acct := dl.Endpoint.ID, dl.Endpoint.Account
		switch {
		case s.claimed[dl.ID]:
			// Claimed again while still held here (a store whose lease ran out): the attempt in
			// flight or queued will record it.
		case s.canStart(dl.Endpoint):
			s.start(dl)
		case s.isSlow(ep):
			// A slow endpoint keeps no queue here. With an attempt running it is skipped from the
			// next poll, so it is due again at once; without, it waits for the slow share or its
			// account's to free.
			next := s.d.cfg.Now()
			if s.running[ep] == 0 {
				next = next.Add(s.d.cfg.RequestTimeout)
			}
			s.d.deferDelivery(s.ctx, dl, next)
		case len(s.queued[ep]) < s.queueCap(dl.Endpoint) && (acct == "" || s.acctQd[acct] < s.d.cfg.PerAccount):
			s.enqueue(dl)
		default:
			// Due again at once: its endpoint or its account is skipped from the next poll until it
			// has room.
			s.d.deferDelivery(s.ctx, dl, s.d.cfg.Now())
		}
	}
	return len(batch) == free
}

func (s *runState) enqueue(dl Delivery) {
	s.claimed[dl.ID] = true
	s.seq++
	s.queued[dl.Endpoint.ID] = append(s.queued[dl.Endpoint.ID], queuedDelivery{dl, s.seq, s.d.cfg.Now()})
	if a := dl.Endpoint.Account; a != "" {
		s.acctQd[a]++
	}
}

// dequeue takes the first queued delivery of endpoint ep off the queue.
func (s *runState) dequeue(ep string) Delivery {
	q := s.queued[ep]
	dl := q[0].dl
	if len(q) == 1 {
		delete(s.queued, ep)
	} else {
		s.queued[ep] = q[1:]
	}
	delete(s.claimed, dl.ID)
	if a := dl.Endpoint.Account; a != "" {
		if s.acctQd[a]--; s.acctQd[a] <= 0 {
			delete(s.acctQd, a)
		}
	}
	return dl
}

func (s *runState) start(dl Delivery) {
	s.claimed[dl.ID] = true
	s.total++
	s.running[dl.Endpoint.ID]++
	if a := dl.Endpoint.Account; a != "" {
		s.acctRun[a]++
	}
	s.wg.Go(func() {
		took := s.d.attempt(s.ctx, dl)
		s.done <- finished{dl, took}
	})
}

// finish books a finished attempt, learns whether its endpoint is slow, and starts queued
// deliveries on the freed workers.
func (s *runState) finish(f finished) {
	ep, acct := f.dl.Endpoint.ID, f.dl.Endpoint.Account
	delete(s.claimed, f.dl.ID)
	s.total--
	if s.running[ep]--; s.running[ep] <= 0 {
		delete(s.running, ep)
	}
	if acct != "" {
		if s.acctRun[acct]--; s.acctRun[acct] <= 0 {
			delete(s.acctRun, acct)
		}
	}
	if f.took > s.d.cfg.SlowAfter {
		if _, ok := s.slow[ep]; !ok && len(s.slow) >= maxSlowTracked {
			for e := range s.slow {
				delete(s.slow, e)
				break
			}
		}
		s.slow[ep] = acct
	} else {
		delete(s.slow, ep)
	}
	if s.ctx.Err() != nil {
		return
	}
	s.startQueued()
	if s.isSlow(ep) {
		// Queued before it was found slow: handed back, due at once (it is skipped while its
		// attempt runs), rather than held here past a slot it may not get for a while.
		for len(s.queued[ep]) > 0 {
			s.d.deferDelivery(s.ctx, s.dequeue(ep), s.d.cfg.Now())
		}
	}
}

// startQueued starts queued deliveries while any can start, oldest queued first: a delivery that
// waits for its account's share (or for any worker) is not overtaken by ones queued after it, so
// it starts once the requests in flight ahead of it end.
func (s *runState) startQueued() {
	for {
		next, oldest, found := "", uint64(0), false
		for ep, q := range s.queued {
			if (!found || q[0].seq < oldest) && s.canStart(q[0].dl.Endpoint) {
				next, oldest, found = ep, q[0].seq, true
			}
		}
		if !found {
			return
		}
		// A delivery that waited so long that its attempt could outrun its lease is handed back,
		// due now, rather than started: another replica's Due would take it while the attempt is in
		// flight and the receiver would get it twice at once. The next poll claims it afresh.
		claimed := s.queued[next][0].claimed
		dl := s.dequeue(next)
		if now := s.d.cfg.Now(); now.Sub(claimed)+s.d.cfg.RequestTimeout+recordTimeout > s.d.lease() {
			s.d.deferDelivery(s.ctx, dl, now)
			continue
		}
		s.start(dl)
	}
}

// handBack returns the queued deliveries to the store as due now, so that another replica, or this
// one restarted, takes them without waiting for their lease.
func (s *runState) handBack() {
	now := s.d.cfg.Now()
	for _, q := range s.queued {
		for _, qd := range q {
			s.d.deferDelivery(s.ctx, qd.dl, now)
		}
	}
}
