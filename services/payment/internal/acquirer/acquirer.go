package acquirer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// maxFieldLen bounds keys, tokens and other free-text fields (Stripe's idempotency key limit).
const maxFieldLen = 255

// Config configures an Acquirer.
type Config struct {
	// MaxOperations bounds the log (every operation is also kept in memory); beyond it acting calls
	// are refused, not acted on. Default 1,000,000.
	MaxOperations int
	Faults        Faults
	Now           func() time.Time
}

// entry is an operation decided in memory; done is closed once its fate on disk is known (err nil:
// durable).
type entry struct {
	op   Operation
	done chan struct{}
	err  error
}

type opKey struct {
	kind Kind
	key  string
}

// authState is what later operations may still do with an approved authorization.
type authState struct {
	amount   int64
	currency string
	token    string
	captured int64
	refunded int64
	voided   bool
}

// KindStats counts the calls of one kind since the process started.
type KindStats struct {
	Approved, Declined, Replayed, KeyConflicts, FailedBefore, AnswersLost uint64
	Stored                                                                uint64 // on disk or being written, every run
}

// Stats is what GetStats reports.
type Stats struct {
	Kinds     map[Kind]KindStats
	Lookups   uint64
	StartedAt time.Time
}

// Acquirer decides operations. Decisions are serialised by one mutex (so two calls with one key, or
// two captures of one authorization, never race), written in decision order by the Store, and
// answered only once durable. It is safe for concurrent use.
type Acquirer struct {
	store   *Store
	maxOps  int
	now     func() time.Time
	started time.Time

	mu      sync.Mutex
	ops     map[opKey]*entry
	log     []*entry // seq order; log[i].op.Seq == i+1
	auths   map[string]*authState
	faults  Faults
	dice    *rand.Rand
	stats   map[Kind]*KindStats
	lookups uint64
}

// New rebuilds the acquirer from everything store holds.
func New(ctx context.Context, store *Store, cfg Config) (*Acquirer, error) {
	if cfg.MaxOperations <= 0 {
		cfg.MaxOperations = 1_000_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &Acquirer{store: store, maxOps: cfg.MaxOperations, now: cfg.Now, started: cfg.Now(),
		ops: map[opKey]*entry{}, auths: map[string]*authState{}, stats: map[Kind]*KindStats{}}
	for _, k := range Kinds {
		a.stats[k] = &KindStats{}
	}
	if err := a.SetFaults(cfg.Faults); err != nil {
		return nil, err
	}
	ops, err := store.Load(ctx)
	if err != nil {
		return nil, err
	}
	for i, op := range ops {
		if op.Seq != uint64(i+1) || !op.Kind.Valid() {
			return nil, fmt.Errorf("acquirer log: row %d has seq %d kind %q: the log is damaged", i+1, op.Seq, op.Kind)
		}
		if !a.apply(op) {
			return nil, fmt.Errorf("acquirer log: %s %q (seq %d) names authorization %q, which was never approved: the log is damaged",
				op.Kind, op.Key, op.Seq, op.AuthorizeKey)
		}
		e := &entry{op: op, done: make(chan struct{})}
		close(e.done)
		a.ops[opKey{op.Kind, op.Key}] = e
		a.log = append(a.log, e)
		a.stats[op.Kind].Stored++
	}
	return a, nil
}

// SetFaults replaces the injected faults.
func (a *Acquirer) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	seed := f.Seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.faults = f
	a.dice = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return nil
}

// Faults returns the faults in force.
func (a *Acquirer) Faults() Faults {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.faults
}

// roll reports whether an event of probability p happens (under a.mu).
func (a *Acquirer) roll(p float64) bool { return p > 0 && a.dice.Float64() < p }

// Act decides req, or answers the first outcome of its key (replayed true). The outcome is durable
// before Act returns it. A *NotActedError means nothing was decided; ErrAnswerLost and any other error
// mean the outcome may exist (Lookup tells).
func (a *Acquirer) Act(ctx context.Context, req Request) (Operation, bool, error) {
	if !req.Kind.Valid() {
		return Operation{}, false, errs.Invalid("kind", "unknown kind %q", req.Kind)
	}
	fingerprint := req.Fingerprint() // outside the lock: it is the costliest part of a replay
	a.mu.Lock()
	f := a.faults
	faulty := f.applies(req.Kind)
	delay := time.Duration(0)
	if faulty {
		delay = f.Latency
		if f.Jitter > 0 {
			delay += time.Duration(a.dice.Int64N(int64(f.Jitter) + 1))
		}
	}
	a.mu.Unlock()
	if err := sleep(ctx, delay); err != nil {
		return Operation{}, false, &NotActedError{Err: err}
	}

	a.mu.Lock()
	st := a.stats[req.Kind]
	if faulty && a.roll(f.FailBefore) {
		st.FailedBefore++
		a.mu.Unlock()
		return Operation{}, false, &NotActedError{Err: errs.New(errs.KindUnavailable, "technical failure before acting (injected)")}
	}
	e, replayed := a.ops[opKey{req.Kind, req.Key}]
	switch {
	case replayed && e.op.Fingerprint != fingerprint:
		st.KeyConflicts++
		a.mu.Unlock()
		return Operation{}, false, &errs.Error{Kind: errs.KindAlreadyExists, Field: "key",
			Msg: fmt.Sprintf("%s key %q was used with different parameters", req.Kind, req.Key)}
	case replayed:
		st.Replayed++
	case ctx.Err() != nil:
		// Past its deadline the caller may already have asked Lookup and been told "not found":
		// acting now would make that answer wrong.
		a.mu.Unlock()
		return Operation{}, false, &NotActedError{Err: ctx.Err()}
	case len(a.log) >= a.maxOps:
		a.mu.Unlock()
		return Operation{}, false, &NotActedError{Err: errs.New(errs.KindResourceExhausted,
			"the acquirer's log is full (%d operations)", a.maxOps)}
	default:
		e = &entry{op: a.decide(req, fingerprint, f), done: make(chan struct{})}
		if err := a.store.Append(e.op, func(err error) { e.err = err; close(e.done) }); err != nil {
			a.mu.Unlock()
			return Operation{}, false, &NotActedError{Err: errs.Wrap(errs.KindUnavailable, err, "acquirer stopping")}
		}
		a.apply(e.op)
		a.ops[opKey{req.Kind, req.Key}] = e
		a.log = append(a.log, e)
		st.Stored++
		if e.op.Outcome == Approved {
			st.Approved++
		} else {
			st.Declined++
		}
	}
	lose := faulty && a.roll(f.LoseAnswer)
	if lose {
		st.AnswersLost++
	}
	a.mu.Unlock()

	// Once decided, the outcome is written whatever happens to ctx; wait for it.
	<-e.done
	if e.err != nil {
		return Operation{}, false, errs.Wrap(errs.KindInternal, e.err, "acquirer store failed")
	}
	if faulty {
		if err := sleep(ctx, f.AnswerDelay); err != nil {
			return Operation{}, false, err
		}
	}
	if lose {
		if f.LoseMode == LoseHang {
			hang, cancel := context.WithTimeout(ctx, maxHang)
			defer cancel()
			<-hang.Done()
			if ctx.Err() != nil {
				return Operation{}, false, ctx.Err()
			}
		}
		return Operation{}, false, ErrAnswerLost
	}
	return e.op, replayed, nil
}

// decide makes the business decision on a new request (under a.mu).
func (a *Acquirer) decide(req Request, fingerprint string, f Faults) Operation {
	seq := uint64(len(a.log)) + 1
	op := Operation{Seq: seq, Kind: req.Kind, Key: req.Key, Fingerprint: fingerprint, Outcome: Approved,
		Amount: req.Amount, Currency: req.Currency, Method: req.Method, Token: req.Token, Capture: req.Capture,
		AuthorizeKey: req.AuthorizeKey, Destination: req.Destination, Metadata: req.Metadata, ActedAt: a.now().UTC()}
	decline := func(code, format string, args ...any) Operation {
		op.Outcome, op.DeclineCode, op.Message = Declined, code, fmt.Sprintf(format, args...)
		return op
	}
	prefix := map[Kind]string{Authorize: "auth", Capture: "cap", Void: "void", Refund: "rfnd", Payout: "po"}[req.Kind]
	op.Ref = fmt.Sprintf("%s_%d", prefix, seq)

	token := req.Token
	if req.Kind == Payout {
		token = req.Destination
	}
	var auth *authState
	if req.Kind == Capture || req.Kind == Void || req.Kind == Refund {
		auth = a.auths[req.AuthorizeKey]
		if auth == nil {
			return decline(CodeAuthorizationNotFound, "no approved authorization with key %q", req.AuthorizeKey)
		}
		token = auth.token
		if req.Kind == Void {
			op.Amount, op.Currency = auth.amount, auth.currency
		} else if req.Currency != auth.currency {
			return decline(CodeCurrencyMismatch, "the authorization is in %s", auth.currency)
		}
	}
	switch req.Kind {
	case Capture:
		switch {
		case auth.voided:
			return decline(CodeAlreadyVoided, "the authorization was voided")
		case req.Amount > auth.amount-auth.captured:
			return decline(CodeExceedsAuthorization, "%d more would exceed the authorization: %d of %d captured", req.Amount, auth.captured, auth.amount)
		}
	case Void:
		switch {
		case auth.voided:
			return decline(CodeAlreadyVoided, "the authorization was voided")
		case auth.captured > 0:
			return decline(CodeAlreadyCaptured, "%d of the authorization was captured", auth.captured)
		}
	case Refund:
		if req.Amount > auth.captured-auth.refunded {
			return decline(CodeExceedsCaptured, "%d more would exceed the captures: %d of %d refunded", req.Amount, auth.refunded, auth.captured)
		}
	}
	if code := f.decline(req.Kind, token, op.Amount, op.Currency); code != "" {
		return decline(code, "declined by rule")
	}
	return op
}

// apply records what an operation changes in the authorizations (under a.mu, or during New). It
// reports false for an approved operation on an authorization that does not exist, which decide never
// produces and only a damaged log holds.
func (a *Acquirer) apply(op Operation) bool {
	if op.Outcome != Approved {
		return true
	}
	auth := a.auths[op.AuthorizeKey]
	if op.Kind != Authorize && op.Kind != Payout && auth == nil {
		return false
	}
	switch op.Kind {
	case Authorize:
		st := &authState{amount: op.Amount, currency: op.Currency, token: op.Token}
		if op.Capture {
			st.captured = op.Amount
		}
		a.auths[op.Key] = st
	case Capture:
		auth.captured += op.Amount
	case Void:
		auth.voided = true
	case Refund:
		auth.refunded += op.Amount
	}
	return true
}

// Lookup reports the durable outcome of (kind, key), or found false if it was never acted on. An
// operation being written is waited for.
func (a *Acquirer) Lookup(ctx context.Context, kind Kind, key string) (Operation, bool, error) {
	if !kind.Valid() {
		return Operation{}, false, errs.Invalid("kind", "unknown kind %q", kind)
	}
	a.mu.Lock()
	a.lookups++
	e, ok := a.ops[opKey{kind, key}]
	a.mu.Unlock()
	if !ok {
		return Operation{}, false, nil
	}
	select {
	case <-e.done:
	case <-ctx.Done():
		return Operation{}, false, ctx.Err()
	}
	if e.err != nil {
		return Operation{}, false, errs.Wrap(errs.KindUnavailable, e.err, "acquirer store failed")
	}
	return e.op, true, nil
}

// List returns up to limit durable operations with seq > after, of kind and key when set, and the
// seq to continue after (0 at the end).
func (a *Acquirer) List(kind Kind, key string, after uint64, limit int) ([]Operation, uint64) {
	durable := a.store.Durable()
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Operation
	if key != "" && kind != "" {
		if e, ok := a.ops[opKey{kind, key}]; ok && e.op.Seq > after && e.op.Seq <= durable {
			out = append(out, e.op)
		}
		return out, 0
	}
	end := min(uint64(len(a.log)), durable)
	for seq := after + 1; seq <= end; seq++ {
		op := a.log[seq-1].op
		if (kind != "" && op.Kind != kind) || (key != "" && op.Key != key) {
			continue
		}
		if len(out) == limit {
			return out, out[len(out)-1].Seq
		}
		out = append(out, op)
	}
	return out, 0
}

// Stats counts the calls since start and the operations stored.
func (a *Acquirer) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := Stats{Kinds: map[Kind]KindStats{}, Lookups: a.lookups, StartedAt: a.started}
	for k, v := range a.stats {
		s.Kinds[k] = *v
	}
	return s
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
