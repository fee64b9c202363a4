// Package instant is an in-process processor.Processor for unit tests and benchmarks. It keeps the
// contract of a real processor where the payment flows depend on it: a Key acts at most once and
// every later call with it answers the first outcome; Lookup tells what really happened; declines
// follow configured rules; and faults can be injected to reproduce the two failure shapes that matter
// (the request never arrived, or the answer was lost after the processor acted).
//
// It answers without I/O, so a benchmark through it measures the payment service, not a processor.
package instant

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bourse-dev/bourse/services/payment/internal/processor"
)

// Fault is what an injected fault does to one call.
type Fault int

const (
	// FaultNone: the call behaves normally.
	FaultNone Fault = iota
	// FaultNotReached: the call does nothing and answers NotReached (connection refused).
	FaultNotReached
	// FaultUnknownBefore: the call does nothing and answers Unknown (a timeout before the request
	// arrived); Lookup then says NotFound.
	FaultUnknownBefore
	// FaultUnknownAfter: the call acts, then answers Unknown (the answer was lost); Lookup then says
	// what it did.
	FaultUnknownAfter
)

// Call describes one call to the processor, for a fault injector to choose a Fault.
type Call struct {
	Op     processor.Operation
	Key    string
	Lookup bool // a Lookup of Op/Key rather than the operation itself
}

// FaultFunc chooses the fault of a call. It must be safe for concurrent use.
type FaultFunc func(Call) Fault

// Decline is a rule that declines an Authorize (by payment token) or a Payout (by destination).
// Every set condition must hold: Token equal (when not empty), and Money.Amount within
// [MinAmount, MaxAmount] (MaxAmount 0 means no upper bound).
type Decline struct {
	Token     string
	MinAmount int64
	MaxAmount int64
	Code      string // the DeclineCode answered; "card_declined" when empty
}

func (d Decline) matches(token string, amount int64) bool {
	if d.Token != "" && d.Token != token {
		return false
	}
	if amount < d.MinAmount {
		return false
	}
	return d.MaxAmount == 0 || amount <= d.MaxAmount
}

// DefaultMaxRecords bounds the outcomes kept (see WithMaxRecords).
const DefaultMaxRecords = 1 << 18

// Option configures a Processor.
type Option func(*Processor)

// WithDeclines sets the decline rules; the first that matches decides the code.
func WithDeclines(rules ...Decline) Option {
	return func(p *Processor) { p.declines = append([]Decline(nil), rules...) }
}

// WithFaults sets the fault injector (SetFaults changes it later).
func WithFaults(f FaultFunc) Option { return func(p *Processor) { p.SetFaults(f) } }

// WithClock sets the clock that stamps Result.At.
func WithClock(now func() time.Time) Option { return func(p *Processor) { p.now = now } }

// WithMaxRecords bounds how many Keys the processor remembers. Past it the oldest are forgotten, as a
// real processor prunes its idempotency records after a retention period: a forgotten Key acts
// again and Lookup answers NotFound for it. Benchmarks rely on this to run in bounded memory.
func WithMaxRecords(n int) Option {
	return func(p *Processor) {
		if n > 0 {
			p.maxRecords = n
		}
	}
}

// Processor is the instant processor. It is safe for concurrent use.
type Processor struct {
	name       string
	declines   []Decline
	now        func() time.Time
	maxRecords int
	faults     atomic.Pointer[FaultFunc]
	seq        atomic.Uint64
	calls      atomic.Int64

	mu      sync.Mutex
	records map[recordKey]processor.Result
	order   []recordKey // insertion order, a ring of maxRecords, for forgetting the oldest
	next    int         // next slot of order to overwrite once full
	auths   map[string]*authorization
	acted   map[processor.Operation]int64
}

type recordKey struct {
	op  processor.Operation
	key string
}

// authorization is what the processor holds for an approved Authorize.
type authorization struct {
	money    processor.Money
	captured int64
	refunded int64
	voided   bool
}

var _ processor.Processor = (*Processor)(nil)

// New returns an empty processor with the given routing name.
func New(name string, opts ...Option) *Processor {
	p := &Processor{
		name:       name,
		now:        time.Now,
		maxRecords: DefaultMaxRecords,
		records:    make(map[recordKey]processor.Result),
		auths:      make(map[string]*authorization),
		acted:      make(map[processor.Operation]int64),
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// SetFaults replaces the fault injector; nil removes it. Tests use it to take the processor "down"
// and bring it back while calls are in flight.
func (p *Processor) SetFaults(f FaultFunc) {
	if f == nil {
		p.faults.Store(nil)
		return
	}
	p.faults.Store(&f)
}

// Name is the routing name.
func (p *Processor) Name() string { return p.name }

// Acted reports how many distinct Keys op has acted on (an Authorize that was declined counts: it
// was processed). A test that must prove "never charged twice" compares it with the payments made.
func (p *Processor) Acted(op processor.Operation) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acted[op]
}

// Calls reports every call received, Lookups and faulted ones included.
func (p *Processor) Calls() int64 { return p.calls.Load() }

func (p *Processor) fault(c Call) Fault {
	if f := p.faults.Load(); f != nil {
		return (*f)(c)
	}
	return FaultNone
}

// do runs one operation under the processor's idempotency: act is called at most once per op/Key
// (under the lock, so concurrent calls with one Key wait for the first) and every call with the
// Key answers its result.
func (p *Processor) do(ctx context.Context, op processor.Operation, key string, act func() processor.Result) (processor.Result, error) {
	p.calls.Add(1)
	if err := ctx.Err(); err != nil {
		// In process we know nothing happened, so this is provably not reached.
		return processor.Result{Status: processor.NotReached, Message: "context done before the call"}, err
	}
	if key == "" {
		return processor.Result{Status: processor.Declined, DeclineCode: "invalid_request", Message: "empty key"}, nil
	}
	f := p.fault(Call{Op: op, Key: key})
	switch f {
	case FaultNotReached:
		return processor.Result{Status: processor.NotReached, Message: "injected: not reached"}, nil
	case FaultUnknownBefore:
		return processor.Result{Status: processor.Unknown, Message: "injected: timeout before the request arrived"}, nil
	}
	rk := recordKey{op, key}
	p.mu.Lock()
	res, ok := p.records[rk]
	if !ok {
		res = act()
		p.remember(rk, res)
		p.acted[op]++
	}
	p.mu.Unlock()
	if f == FaultUnknownAfter {
		return processor.Result{Status: processor.Unknown, Message: "injected: answer lost after the processor acted"}, nil
	}
	return res, nil
}

// remember stores a result, forgetting the oldest once maxRecords are held. Called with mu held.
func (p *Processor) remember(rk recordKey, res processor.Result) {
	p.records[rk] = res
	if len(p.order) < p.maxRecords {
		p.order = append(p.order, rk)
		return
	}
	old := p.order[p.next]
	delete(p.records, old)
	if old.op == processor.OpAuthorize {
		delete(p.auths, old.key)
	}
	p.order[p.next] = rk
	p.next = (p.next + 1) % p.maxRecords
}

func (p *Processor) ref(prefix string) string {
	return fmt.Sprintf("%s_%s_%d", p.name, prefix, p.seq.Add(1))
}

func (p *Processor) approved(prefix string, m processor.Money) processor.Result {
	return processor.Result{Status: processor.Approved, ProcessorRef: p.ref(prefix), Money: m, At: p.now()}
}

func declined(code, msg string, m processor.Money) processor.Result {
	return processor.Result{Status: processor.Declined, DeclineCode: code, Message: msg, Money: m}
}

func (p *Processor) declineFor(token string, amount int64) (string, bool) {
	for _, d := range p.declines {
		if d.matches(token, amount) {
			if d.Code == "" {
				return "card_declined", true
			}
			return d.Code, true
		}
	}
	return "", false
}

func validMoney(m processor.Money) bool { return m.Amount > 0 && len(m.Currency) == 3 }

// Authorize approves unless a decline rule matches; with Capture it captures the full amount too.
func (p *Processor) Authorize(ctx context.Context, req processor.AuthorizeRequest) (processor.Result, error) {
	return p.do(ctx, processor.OpAuthorize, req.Key, func() processor.Result {
		if !validMoney(req.Money) {
			return declined("invalid_amount", "amount must be positive with a currency", req.Money)
		}
		if code, ok := p.declineFor(req.PaymentToken, req.Money.Amount); ok {
			return declined(code, "declined by rule", req.Money)
		}
		a := &authorization{money: req.Money}
		if req.Capture {
			a.captured = req.Money.Amount
		}
		p.auths[req.Key] = a
		return p.approved("ch", req.Money)
	})
}

// Capture captures up to what remains of an approved, not voided authorization.
func (p *Processor) Capture(ctx context.Context, req processor.CaptureRequest) (processor.Result, error) {
	return p.do(ctx, processor.OpCapture, req.Key, func() processor.Result {
		a, ok := p.auths[req.AuthorizeKey]
		switch {
		case !ok:
			return declined("no_such_authorization", "no approved authorization for this key", req.Money)
		case a.voided:
			return declined("authorization_voided", "the authorization was voided", req.Money)
		case req.Money.Currency != a.money.Currency || req.Money.Amount <= 0:
			return declined("invalid_amount", "amount or currency does not match the authorization", req.Money)
		case req.Money.Amount > a.money.Amount-a.captured:
			return declined("amount_too_large", "capture exceeds the uncaptured amount", req.Money)
		}
		a.captured += req.Money.Amount
		return p.approved("cp", req.Money)
	})
}

// Void cancels an authorization nothing was captured from.
func (p *Processor) Void(ctx context.Context, req processor.VoidRequest) (processor.Result, error) {
	return p.do(ctx, processor.OpVoid, req.Key, func() processor.Result {
		a, ok := p.auths[req.AuthorizeKey]
		switch {
		case !ok:
			return declined("no_such_authorization", "no approved authorization for this key", processor.Money{})
		case a.captured > 0:
			return declined("already_captured", "the authorization was captured", a.money)
		}
		a.voided = true
		return p.approved("vd", a.money)
	})
}

// Refund returns up to what was captured and not yet refunded.
func (p *Processor) Refund(ctx context.Context, req processor.RefundRequest) (processor.Result, error) {
	return p.do(ctx, processor.OpRefund, req.Key, func() processor.Result {
		a, ok := p.auths[req.AuthorizeKey]
		switch {
		case !ok:
			return declined("no_such_authorization", "no approved authorization for this key", req.Money)
		case req.Money.Currency != a.money.Currency || req.Money.Amount <= 0:
			return declined("invalid_amount", "amount or currency does not match the charge", req.Money)
		case req.Money.Amount > a.captured-a.refunded:
			return declined("amount_too_large", "refund exceeds the captured amount not yet refunded", req.Money)
		}
		a.refunded += req.Money.Amount
		return p.approved("re", req.Money)
	})
}

// Payout pays out unless a decline rule matches the destination and amount.
func (p *Processor) Payout(ctx context.Context, req processor.PayoutRequest) (processor.Result, error) {
	return p.do(ctx, processor.OpPayout, req.Key, func() processor.Result {
		if !validMoney(req.Money) {
			return declined("invalid_amount", "amount must be positive with a currency", req.Money)
		}
		if code, ok := p.declineFor(req.Destination, req.Money.Amount); ok {
			return declined(code, "declined by rule", req.Money)
		}
		return p.approved("po", req.Money)
	})
}

// Lookup answers the recorded outcome of op/key, NotFound when it never acted, and Unknown when an
// injected fault makes the processor unreachable for the lookup.
func (p *Processor) Lookup(ctx context.Context, op processor.Operation, key string) (processor.Result, error) {
	switch op {
	case processor.OpAuthorize, processor.OpCapture, processor.OpVoid, processor.OpRefund, processor.OpPayout:
	default:
		return processor.Result{}, fmt.Errorf("instant: unknown operation %q", op)
	}
	p.calls.Add(1)
	if ctx.Err() != nil || p.fault(Call{Op: op, Key: key, Lookup: true}) != FaultNone {
		return processor.Result{Status: processor.Unknown, Message: "processor could not be asked"}, nil
	}
	p.mu.Lock()
	res, ok := p.records[recordKey{op, key}]
	p.mu.Unlock()
	if !ok {
		return processor.Result{Status: processor.NotFound}, nil
	}
	return res, nil
}
