package routing

import (
	"github.com/bourse-dev/bourse/services/payment/internal/breaker"
	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/processor"
)

// Table gives the processors of a payment by the rules, each behind its breaker, for a payment
// flow that runs its own fallback loop (one attempt per processor, recorded before the call). The
// guarded processors keep the router's promise: one whose circuit is open answers NotReached without
// being called, so the flow's "next on NotReached" skips it.
type Table struct {
	rules Rules
	procs map[string]processor.Processor
}

// NewTable checks that every processor the rules name is among procs and guards each with its
// breaker from breakers (nil: no breakers).
func NewTable(rules Rules, procs []processor.Processor, breakers *breaker.Set) (*Table, error) {
	r, err := New(rules, procs, nil, nil)
	if err != nil {
		return nil, err
	}
	t := &Table{rules: rules, procs: make(map[string]processor.Processor, len(r.procs))}
	for name, p := range r.procs {
		t.procs[name] = breaker.Guard(p, breakers)
	}
	return t, nil
}

// Route returns the guarded processors in order for a payment, or nil when no rule matches.
func (t *Table) Route(method domain.Method, m domain.Money) []processor.Processor {
	names, ok := t.rules.Route(string(method), m.Currency, m.Amount)
	if !ok {
		return nil
	}
	out := make([]processor.Processor, 0, len(names))
	for _, n := range names {
		out = append(out, t.procs[n])
	}
	return out
}

// Processor returns a guarded processor by name (capture, refund and lookups go to the one that
// authorized).
func (t *Table) Processor(name string) (processor.Processor, bool) {
	p, ok := t.procs[name]
	return p, ok
}
