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
)

// Config tunes a Dispatcher. Zero fields take the defaults.
type Config struct {
	// Concurrency is how many deliveries are in flight at once (default 16).
	Concurrency int
	// PerEndpoint is how many of them one endpoint may hold (default Concurrency/4, at least 1), so a
	// slow or hanging receiver holds at most that many workers and never stalls the others.
	PerEndpoint int
	// RequestTimeout bounds one HTTP attempt, connection to last byte (default 10 s).
	RequestTimeout time.Duration
	// InitialBackoff is the wait after the first failure; it doubles per failure up to MaxBackoff
	// (defaults 30 s and 1 h), with jitter (each wait is drawn from its upper half).
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// MaxAge is how long after its creation a delivery is retried (default 24 h).
	MaxAge time.Duration
	// PollInterval is how often the store is asked for due deliveries when nothing woke the
	// dispatcher (default 1 s); Kick wakes it at once.
	PollInterval time.Duration
	// DeferDelay is how far a delivery is pushed back when its endpoint is at PerEndpoint (default 1 s).
	DeferDelay time.Duration
	// Client sends the requests (default: a client of its own). Redirects are never followed: a
	// 3xx is a failed attempt, as with Stripe.
	Client *http.Client
	Now    func() time.Time
	Log    *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
	if c.PerEndpoint <= 0 {
		c.PerEndpoint = max(c.Concurrency/4, 1)
	}
	c.PerEndpoint = min(c.PerEndpoint, c.Concurrency)
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 10 * time.Second
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
	if c.DeferDelay <= 0 {
		c.DeferDelay = time.Second
	}
	if c.Client == nil {
		c.Client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
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
func (d *Dispatcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	done := make(chan Delivery, d.cfg.Concurrency)
	inflight := make(map[string]bool, d.cfg.Concurrency) // delivery ids
	perEndpoint := make(map[string]int)
	tick := time.NewTicker(d.cfg.PollInterval)
	defer tick.Stop()

	finish := func(dl Delivery) {
		delete(inflight, dl.ID)
		if perEndpoint[dl.Endpoint.ID]--; perEndpoint[dl.Endpoint.ID] <= 0 {
			delete(perEndpoint, dl.Endpoint.ID)
		}
	}
	for {
		// Ask for as many as there are free workers; a full batch means more may be due.
		more := false
		if free := d.cfg.Concurrency - len(inflight); free > 0 {
			batch, err := d.store.Due(ctx, d.cfg.Now(), d.lease(), free)
			if err != nil && ctx.Err() == nil {
				d.cfg.Log.WarnContext(ctx, "webhook: reading due deliveries", "err", err)
			}
			more = err == nil && len(batch) == free
			for _, dl := range batch {
				switch {
				case inflight[dl.ID]:
					// Claimed again while still in flight here (a store whose lease ran out): the
					// running attempt will record it.
				case perEndpoint[dl.Endpoint.ID] >= d.cfg.PerEndpoint:
					d.deferDelivery(ctx, dl)
				default:
					inflight[dl.ID] = true
					perEndpoint[dl.Endpoint.ID]++
					wg.Go(func() {
						d.attempt(ctx, dl)
						done <- dl // never blocks: done holds Concurrency and at most that many run
					})
				}
			}
		}
		if more && len(inflight) < d.cfg.Concurrency {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err() // the deferred Wait lets the attempts in flight finish and record
		case dl := <-done:
			finish(dl)
		case <-d.kick:
		case <-tick.C:
		}
		// Collect every worker that finished meanwhile before asking again.
		for drained := false; !drained; {
			select {
			case dl := <-done:
				finish(dl)
			default:
				drained = true
			}
		}
	}
}

// recordCtx lets a result be written even as the dispatcher stops: an attempt that was made should
// be in the log.
func recordCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
}

func (d *Dispatcher) deferDelivery(ctx context.Context, dl Delivery) {
	rctx, cancel := recordCtx(ctx)
	defer cancel()
	now := d.cfg.Now()
	r := Result{DeliveryID: dl.ID, Outcome: Deferred, Attempt: dl.Attempts, At: now, NextAttempt: now.Add(d.cfg.DeferDelay)}
	if err := d.store.Record(rctx, r); err != nil {
		d.cfg.Log.WarnContext(ctx, "webhook: deferring a delivery", "delivery", dl.ID, "err", err)
	}
}

// attempt makes one HTTP attempt of dl and records it.
func (d *Dispatcher) attempt(ctx context.Context, dl Delivery) {
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
			r.Error = err.Error()
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
}

// errPermanent marks a delivery that can never succeed (its event does not encode).
var errPermanent = errors.New("permanent")

const maxResponse = 256

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
	return resp.StatusCode, strings.ToValidUTF8(string(head), "\uFFFD"), nil
}
