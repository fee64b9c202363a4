// Package breaker is a circuit breaker per payment processor. It counts only technical failures
// (NotReached, Unknown): a decline is the processor working, so a burst of declined cards never opens
// the circuit. While open, calls are refused without reaching the processor, which the router treats
// as NotReached and falls back on; after a cool-down one probe call is let through (half-open), and its
// outcome closes the circuit or opens it for another cool-down.
package breaker

import (
	"sync"
	"time"

	"github.com/bourse-dev/bourse/services/payment/internal/processor"
)

// State of a circuit.
type State int

const (
	Closed State = iota
	Open
	HalfOpen
)

func (s State) String() string {
	switch s {
	case Open:
		return "open"
	case HalfOpen:
		return "half_open"
	default:
		return "closed"
	}
}

// Config tunes every breaker of a Set. Zero fields take the defaults below.
type Config struct {
	// Window over which the failure ratio is computed (default 30 s), split into Buckets (default 10)
	// so old outcomes leave the window a bucket at a time.
	Window  time.Duration
	Buckets int
	// MinCalls is how many outcomes the window must hold before the ratio can open the circuit
	// (default 10): two failures out of two calls are not a trend.
	MinCalls int
	// FailureRatio at or above which the circuit opens (default 0.5).
	FailureRatio float64
	// CoolDown is how long the circuit stays open before a probe is let through (default 10 s). A
	// probe that never reports back is given up after another CoolDown, and a new one let through.
	CoolDown time.Duration
	// Now is the clock (default time.Now); tests inject one.
	Now func() time.Time
	// OnChange, when set, is called after every state change (outside the breaker's lock), for logs
	// and metrics. It must not block.
	OnChange func(name string, from, to State)
}

func (c Config) withDefaults() Config {
	if c.Window <= 0 {
		c.Window = 30 * time.Second
	}
	if c.Buckets <= 0 {
		c.Buckets = 10
	}
	if c.MinCalls <= 0 {
		c.MinCalls = 10
	}
	if c.FailureRatio <= 0 || c.FailureRatio > 1 {
		c.FailureRatio = 0.5
	}
	if c.CoolDown <= 0 {
		c.CoolDown = 10 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// IsFailure reports whether a call's outcome counts against the processor: only the technical ones.
func IsFailure(s processor.Status) bool { return s == processor.NotReached || s == processor.Unknown }

type bucket struct {
	start     time.Time // start of the bucket's slice of time; zero when unused
	successes int
	failures  int
}

// Breaker is the circuit of one processor. It is safe for concurrent use.
type Breaker struct {
	name string
	cfg  Config

	mu         sync.Mutex
	state      State
	gen        uint64 // bumped on every state change; tickets of an older generation are ignored
	buckets    []bucket
	openedAt   time.Time
	probing    bool
	probeSince time.Time
}

// New returns a closed breaker.
func New(name string, cfg Config) *Breaker {
	cfg = cfg.withDefaults()
	return &Breaker{name: name, cfg: cfg, buckets: make([]bucket, cfg.Buckets)}
}

// Ticket is the permission to make one call; report its outcome with Record, or Cancel when the call
// was not made. The zero Ticket (no breaker) does nothing.
type Ticket struct {
	b     *Breaker
	gen   uint64
	probe bool
}

// State reports the current state (Open turns into HalfOpen once the cool-down has passed).
func (b *Breaker) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == Open && !b.cfg.Now().Before(b.openedAt.Add(b.cfg.CoolDown)) {
		return HalfOpen
	}
	return b.state
}

// Allow reports whether a call may be made now and, if so, the ticket to report its outcome with.
func (b *Breaker) Allow() (Ticket, bool) {
	now := b.cfg.Now()
	b.mu.Lock()
	var change func()
	defer func() {
		b.mu.Unlock()
		if change != nil {
			change()
		}
	}()
	switch b.state {
	case Closed:
		return Ticket{b: b, gen: b.gen}, true
	case Open:
		if now.Before(b.openedAt.Add(b.cfg.CoolDown)) {
			return Ticket{}, false
		}
		change = b.setState(HalfOpen)
	case HalfOpen:
		if b.probing && now.Before(b.probeSince.Add(b.cfg.CoolDown)) {
			return Ticket{}, false
		}
		// The previous probe never reported back: its ticket is void from now on.
		b.gen++
	}
	b.probing, b.probeSince = true, now
	return Ticket{b: b, gen: b.gen, probe: true}, true
}

// Record reports the outcome of the call the ticket allowed.
func (t Ticket) Record(s processor.Status) {
	if t.b != nil {
		t.b.record(t, IsFailure(s))
	}
}

// Cancel reports that the allowed call was not made; a probe slot is given back.
func (t Ticket) Cancel() {
	if t.b == nil || !t.probe {
		return
	}
	b := t.b
	b.mu.Lock()
	if b.gen == t.gen && b.state == HalfOpen {
		b.probing = false
	}
	b.mu.Unlock()
}

func (b *Breaker) record(t Ticket, failure bool) {
	now := b.cfg.Now()
	b.mu.Lock()
	var change func()
	defer func() {
		b.mu.Unlock()
		if change != nil {
			change()
		}
	}()
	if t.gen != b.gen {
		return // the call began under another state; its outcome says nothing about this one
	}
	switch b.state {
	case HalfOpen:
		if !t.probe {
			return
		}
		b.probing = false
		if failure {
			change = b.setState(Open)
			b.openedAt = now
			return
		}
		change = b.setState(Closed)
	case Closed:
		bk := b.bucketAt(now)
		if failure {
			bk.failures++
		} else {
			bk.successes++
		}
		if failure && b.tripped(now) {
			change = b.setState(Open)
			b.openedAt = now
		}
	}
}

// bucketAt returns the bucket now falls in, recycling it when it last held an older slice of time.
func (b *Breaker) bucketAt(now time.Time) *bucket {
	width := b.cfg.Window / time.Duration(b.cfg.Buckets)
	if width <= 0 {
		width = 1
	}
	slot := now.UnixNano() / int64(width)
	bk := &b.buckets[int(slot%int64(len(b.buckets)))]
	start := time.Unix(0, slot*int64(width))
	if !bk.start.Equal(start) {
		*bk = bucket{start: start}
	}
	return bk
}

// tripped reports whether the outcomes inside the window reach the failure ratio.
func (b *Breaker) tripped(now time.Time) bool {
	var ok, failed int
	from := now.Add(-b.cfg.Window)
	for _, bk := range b.buckets {
		if !bk.start.IsZero() && bk.start.After(from) {
			ok += bk.successes
			failed += bk.failures
		}
	}
	total := ok + failed
	return total >= b.cfg.MinCalls && float64(failed) >= b.cfg.FailureRatio*float64(total)
}

// setState changes state (with mu held) and returns the notification to run once it is released.
func (b *Breaker) setState(to State) func() {
	from := b.state
	if from == to {
		return nil
	}
	b.state = to
	b.gen++
	if to == Closed {
		clear(b.buckets)
	}
	if b.cfg.OnChange == nil {
		return nil
	}
	name, fn := b.name, b.cfg.OnChange
	return func() { fn(name, from, to) }
}

// Set holds one breaker per processor name, created on first use with the Set's config. A nil *Set
// allows every call.
type Set struct {
	cfg Config
	mu  sync.Mutex
	m   map[string]*Breaker
}

// NewSet returns an empty set.
func NewSet(cfg Config) *Set { return &Set{cfg: cfg, m: make(map[string]*Breaker)} }

// Get returns the breaker of a processor.
func (s *Set) Get(name string) *Breaker {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[name]
	if !ok {
		b = New(name, s.cfg)
		s.m[name] = b
	}
	return b
}

// Allow asks the processor's breaker for a call.
func (s *Set) Allow(name string) (Ticket, bool) {
	if s == nil {
		return Ticket{}, true
	}
	return s.Get(name).Allow()
}
