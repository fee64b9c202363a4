package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/payment/internal/breaker"
	"github.com/bourse-dev/bourse/services/payment/internal/processor"
)

// Call is one processor operation (Authorize, Payout, ...) that the router runs on a processor.
type Call func(ctx context.Context, p processor.Processor) (processor.Result, error)

// BeforeCall, when given to Run, is called just before each processor is called (after its breaker
// allowed it). The payment flow records there, durably, that the attempt is about to go to this
// processor, so after a crash the janitor knows every processor that may have acted. An error stops
// the route without calling the processor.
type BeforeCall func(ctx context.Context, processor string) error

// Attempt is one step of a route.
type Attempt struct {
	Processor string
	// Skipped: the processor's circuit was open, so it was not called (Result is NotReached).
	Skipped bool
	Result  processor.Result
	Err     error // what the processor returned with Result, if anything
}

// Outcome is what running a call across a route came to.
type Outcome struct {
	// Processor is the one whose answer decided (Approved, Declined or Unknown); empty when none was
	// reached.
	Processor string
	// Result of the deciding processor; Status NotReached when every processor was skipped or not
	// reached, so nothing happened anywhere and the payment may be failed (or retried later).
	Result   processor.Result
	Attempts []Attempt
}

// Router runs processor calls across routes. It is safe for concurrent use.
type Router struct {
	rules    Rules
	procs    map[string]processor.Processor
	breakers *breaker.Set
	log      *slog.Logger
}

// New checks that every processor the rules name is among procs and returns the router. breakers
// may be nil (no circuit breaking); log may be nil.
func New(rules Rules, procs []processor.Processor, breakers *breaker.Set, log *slog.Logger) (*Router, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Router{rules: rules, procs: make(map[string]processor.Processor, len(procs)), breakers: breakers, log: log}
	for _, p := range procs {
		if _, dup := r.procs[p.Name()]; dup {
			return nil, fmt.Errorf("routing: two processors named %q", p.Name())
		}
		r.procs[p.Name()] = p
	}
	for _, name := range rules.Processors() {
		if _, ok := r.procs[name]; !ok {
			return nil, errs.Invalid("routing", "processor %q is not configured", name)
		}
	}
	return r, nil
}

// Processor returns a configured processor by name (for Lookup by the janitor, say).
func (r *Router) Processor(name string) (processor.Processor, bool) {
	p, ok := r.procs[name]
	return p, ok
}

// Route returns the processors for a payment; errs.Invalid naming "method" when no rule matches
// (the rules cover what the API accepts, so an unmatched payment is one bourse cannot take).
func (r *Router) Route(method, currency string, amount int64) ([]string, error) {
	route, ok := r.rules.Route(method, currency, amount)
	if !ok {
		return nil, errs.Invalid("method", "no processor takes %s payments in %s of %d", method, currency, amount)
	}
	return route, nil
}

// Authorize routes req by its method, currency and amount and runs it with fallback.
func (r *Router) Authorize(ctx context.Context, req processor.AuthorizeRequest, before BeforeCall) (Outcome, error) {
	route, err := r.Route(req.Method, req.Money.Currency, req.Money.Amount)
	if err != nil {
		return Outcome{}, err
	}
	return r.Run(ctx, route, func(ctx context.Context, p processor.Processor) (processor.Result, error) {
		return p.Authorize(ctx, req)
	}, before)
}

// Run calls each processor of route in turn until one answers Approved, Declined or Unknown, and
// returns which one did and every attempt made. A processor whose breaker is open is skipped as
// NotReached without a call. The error is only for the route itself: a processor name not
// configured (errs.Invalid "processor"), BeforeCall failing, or ctx ending before the next
// processor could be tried; the processors' outcomes are in Outcome, whose Result is then NotReached
// if nothing was decided. Capture, Void and Refund go to the processor that authorized: pass a
// one-name route.
func (r *Router) Run(ctx context.Context, route []string, call Call, before BeforeCall) (Outcome, error) {
	out := Outcome{Result: processor.Result{Status: processor.NotReached, Message: "no processor reached"}}
	for _, name := range route {
		p, ok := r.procs[name]
		if !ok {
			return out, errs.Invalid("processor", "processor %q is not configured", name)
		}
		if err := ctx.Err(); err != nil {
			return out, err
		}
		ticket, ok := r.breakers.Allow(name)
		if !ok {
			res := processor.Result{Status: processor.NotReached, Message: "circuit open"}
			out.Attempts = append(out.Attempts, Attempt{Processor: name, Skipped: true, Result: res})
			r.log.DebugContext(ctx, "processor skipped: circuit open", "processor", name)
			continue
		}
		if before != nil {
			if err := before(ctx, name); err != nil {
				ticket.Cancel()
				return out, err
			}
		}
		res, err := call(ctx, p)
		res = sane(res, err)
		if errors.Is(ctx.Err(), context.Canceled) && breaker.IsFailure(res.Status) {
			// The caller gave up; that says nothing about the processor's health.
			ticket.Cancel()
		} else {
			ticket.Record(res.Status)
		}
		out.Attempts = append(out.Attempts, Attempt{Processor: name, Result: res, Err: err})
		if res.Status != processor.NotReached {
			out.Processor, out.Result = name, res
			return out, nil
		}
		r.log.InfoContext(ctx, "processor not reached, falling back", "processor", name, "reason", res.Message)
	}
	return out, nil
}

// sane turns answers outside the processor contract into Unknown, the status that never leads to a
// second charge: an error with Approved or Declined, NotFound (Lookup's status) from an operation, or
// a status the contract does not know.
func sane(res processor.Result, err error) processor.Result {
	switch res.Status {
	case processor.Approved, processor.Declined:
		if err == nil {
			return res
		}
	case processor.NotReached, processor.Unknown:
		return res
	}
	msg := fmt.Sprintf("processor answered %v outside its contract", res.Status)
	if err != nil {
		msg += ": " + err.Error()
	}
	return processor.Result{Status: processor.Unknown, ProcessorRef: res.ProcessorRef, Message: msg}
}
