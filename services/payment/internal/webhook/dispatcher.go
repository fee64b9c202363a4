package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Config tunes a Dispatcher. Zero fields take the defaults.
type Config struct {
	// Concurrency is how many deliveries are in flight at once (default 16).
	Concurrency int
	// PerEndpoint is how many of them one endpoint may hold (default Concurrency/4, at least 1), so a
	// slow or hanging receiver holds at most that many workers and never stalls the others.
	PerEndpoint int
	// PerAccount is how many of them the endpoints of one account may hold together (default
	// Concurrency/4, at least 1), so an account with many endpoints, each within its own share, still
	// leaves the other accounts their workers. An endpoint holds at most the smaller of the two.
	PerAccount int
	// RequestTimeout bounds one HTTP attempt, connection to last byte (default 10 s).
	RequestTimeout time.Duration
	// InitialBackoff is the wait after the first failure; it doubles per failure up to MaxBackoff
	// (defaults 30 s and 1 h), with jitter (each wait is drawn from its upper half).
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// MaxAge is how long after its creation a delivery is retried (default 24 h).
	MaxAge time.Duration
	// SlowAfter is how long an attempt may take before its endpoint counts as slow (default half of
	// RequestTimeout): see Run.
	SlowAfter time.Duration
	// PollInterval is how often the store is asked for due deliveries when nothing woke the
	// dispatcher (default 1 s); Kick wakes it at once.
	PollInterval time.Duration
	// Client sends the requests (default: a client of its own, which connects to public
	// addresses only unless AllowPrivateAddresses). Redirects are never followed: a 3xx is a failed
	// attempt, as with Stripe.
	Client *http.Client
	// AllowPrivateAddresses lets the default client deliver to loopback, private and link-local
	// addresses: for development (make run) and tests, never for customers' endpoints in production.
	AllowPrivateAddresses bool
	Now                   func() time.Time
	Log                   *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
	if c.PerEndpoint <= 0 {
		c.PerEndpoint = max(c.Concurrency/4, 1)
	}
	c.PerEndpoint = min(c.PerEndpoint, c.Concurrency)
	if c.PerAccount <= 0 {
		c.PerAccount = max(c.Concurrency/4, 1)
	}
	c.PerAccount = min(c.PerAccount, c.Concurrency)
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.SlowAfter <= 0 {
		c.SlowAfter = c.RequestTimeout / 2
	}
	if c.InitialBackoff <= 0 {
		c.InitialBackoff = 30 * time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = time.Hour
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 24 * time.Hour
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.Client == nil {
		c.Client = newClient(c.AllowPrivateAddresses)
	}
	client := *c.Client // a copy, so the caller's client keeps its own redirect policy
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.Client = &client
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Backoff is the wait after the n-th failed attempt (n from 1) before the next: InitialBackoff
// doubled n-1 times, capped at MaxBackoff, then drawn uniformly from its upper half so that
// deliveries failed together do not retry together. u is in [0, 1).
func (c Config) Backoff(n int, u float64) time.Duration {
	c = c.withDefaults()
	d := c.InitialBackoff
	for i := 1; i < n && d < c.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.MaxBackoff)
	return d/2 + time.Duration(u*float64(d/2))
}

// Dispatcher delivers due webhook deliveries. Run owns every goroutine it starts.
type Dispatcher struct {
	store Store
	cfg   Config
	kick  chan struct{}
}

// NewDispatcher returns a dispatcher over store; Run starts it.
func NewDispatcher(store Store, cfg Config) *Dispatcher {
	return &Dispatcher{store: store, cfg: cfg.withDefaults(), kick: make(chan struct{}, 1)}
}

// Kick makes the dispatcher ask the store for due deliveries now (call it after committing events).
// It never blocks.
func (d *Dispatcher) Kick() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// lease is how long a claimed delivery stays claimed: its request, plus time to record it.
func (d *Dispatcher) lease() time.Duration { return d.cfg.RequestTimeout + 30*time.Second }

// Run delivers until ctx ends, then waits for the attempts in flight (each bounded by
// RequestTimeout, and canceled by ctx) and returns ctx's error. The workers it starts block only on
// their HTTP request and on Store.Record.
//
// Workers are shared at two levels: an endpoint holds at most PerEndpoint of them and the
// endpoints of one account together at most PerAccount, so neither a hanging receiver nor an
// account with many endpoints, each a little under the slow threshold, holds every worker.
//
// Run claims up to twice Concurrency deliveries: those running, and a short local queue of those
// that wait for a worker (at most PerAccount per account, and per endpoint PerEndpoint or half its
// account's, so that one endpoint's older backlog leaves room for its account's other endpoints),
// which start as workers free up, oldest queued first. An endpoint or account whose queue is full is skipped
// when asking the store, and a delivery past it in one batch is handed back (Deferred), so that one
// endpoint's or account's backlog never fills the claims the others need. A queued delivery waits
// for the requests in flight ahead of it, each bounded by RequestTimeout; one that waited so long
// that its own request could outlast its lease is handed back instead, to be claimed afresh.
//
// An endpoint whose last attempt took longer than SlowAfter (a timeout, or a receiver that takes
// its time) is slow until one does not: it gets one worker at a time, from a share of half of them
// for all the slow endpoints together (and within its account's share), and no local queue, so that
// however many endpoints hang, the others keep the other half of the workers. A fresh endpoint that
// hangs holds its PerEndpoint share for one RequestTimeout before it is known to be slow.
func (d *Dispatcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	s := &runState{
		d:       d,
		ctx:     ctx,
		wg:      &wg,
		done:    make(chan finished, d.cfg.Concurrency),
		claimed: make(map[string]bool, 2*d.cfg.Concurrency),
		running: make(map[string]int),
		queued:  make(map[string][]queuedDelivery),
		acctRun: make(map[string]int),
		acctQd:  make(map[string]int),
		slow:    make(map[string]string),
	}
	defer s.handBack()
	tick := time.NewTicker(d.cfg.PollInterval)
	defer tick.Stop()
	for {
		more := s.poll()
		if more && len(s.claimed) < 2*d.cfg.Concurrency {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case f := <-s.done:
			s.finish(f)
		case <-d.kick:
		case <-tick.C:
		}
		// Collect every worker that finished meanwhile before asking again.
		for drained := false; !drained; {
			select {
			case f := <-s.done:
				s.finish(f)
			default:
				drained = true
			}
		}
	}
}

// recordTimeout bounds the write of one result.
const recordTimeout = 5 * time.Second

// recordCtx lets a result be written even as the dispatcher stops: an attempt that was made should
// be in the log.
func recordCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
}

func (d *Dispatcher) deferDelivery(ctx context.Context, dl Delivery, next time.Time) {
	rctx, cancel := recordCtx(ctx)
	defer cancel()
	r := Result{DeliveryID: dl.ID, Outcome: Deferred, Attempt: dl.Attempts, At: d.cfg.Now(), NextAttempt: next}
	if err := d.store.Record(rctx, r); err != nil {
		d.cfg.Log.WarnContext(ctx, "webhook: deferring a delivery", "delivery", dl.ID, "err", err)
	}
}

// attempt makes one HTTP attempt of dl, records it and returns how long the request took.
func (d *Dispatcher) attempt(ctx context.Context, dl Delivery) time.Duration {
	start := d.cfg.Now()
	r := Result{DeliveryID: dl.ID, Attempt: dl.Attempts + 1, At: start}
	status, resp, err := d.send(ctx, dl, start)
	r.Duration = d.cfg.Now().Sub(start)
	r.StatusCode, r.Response = status, resp
	switch {
	case err == nil && status >= 200 && status < 300:
		r.Outcome = Delivered
	default:
		if err != nil {
			r.Error = storable(err.Error(), maxError)
		} else {
			r.Error = fmt.Sprintf("endpoint answered %d", status)
		}
		next := start.Add(d.cfg.Backoff(r.Attempt, rand.Float64()))
		if errors.Is(err, errPermanent) || next.After(dl.Created.Add(d.cfg.MaxAge)) {
			r.Outcome = GaveUp
		} else {
			r.Outcome, r.NextAttempt = Failed, next
		}
	}
	d.cfg.Log.DebugContext(ctx, "webhook attempt", "delivery", dl.ID, "event", dl.Event.ID,
		"endpoint", dl.Endpoint.ID, "attempt", r.Attempt, "outcome", r.Outcome.String(), "status", status)
	rctx, cancel := recordCtx(ctx)
	defer cancel()
	if err := d.store.Record(rctx, r); err != nil {
		// The claim lapses and the delivery is attempted again: at least once, never lost.
		d.cfg.Log.WarnContext(ctx, "webhook: recording an attempt", "delivery", dl.ID, "err", err)
	}
	return r.Duration
}

// errPermanent marks a delivery that can never succeed (its event does not encode).
var errPermanent = errors.New("permanent")

// maxResponse and maxError bound what an attempt records of the receiver's answer (Result.Response,
// Result.Error), in bytes.
const (
	maxResponse = 256
	maxError    = 500
)

// storable is s as a text column holds it: valid UTF-8 without NUL (PostgreSQL refuses both in
// text, and a receiver chooses every byte of its answer: an attempt whose record fails is made
// again, forever), at most n bytes, cut at a character boundary (so a store's own cut at n bytes
// never splits one).
func storable(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// send posts the signed event and returns the status and the start of the response body.
func (d *Dispatcher) send(ctx context.Context, dl Delivery, now time.Time) (int, string, error) {
	body, err := dl.Event.Body()
	if err != nil {
		return 0, "", fmt.Errorf("%w: event %s does not encode: %v", errPermanent, dl.Event.ID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, dl.Endpoint.URL, bytes.NewReader(body))
	if err != nil {
		return 0, "", fmt.Errorf("%w: endpoint URL: %v", errPermanent, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "bourse-webhooks/1")
	req.Header.Set(Header, Sign(body, dl.Endpoint.Secrets, now))
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	// Read a little more so the connection can be reused, but never a hostile stream's worth.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, storable(string(head), maxResponse), nil
}
