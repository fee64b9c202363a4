package routing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/payment/internal/breaker"
	"github.com/bourse-dev/bourse/services/payment/internal/processor"
	"github.com/bourse-dev/bourse/services/payment/internal/processor/instant"
)

// behaviour is what one processor of a route does with the call.
type behaviour int

const (
	approves behaviour = iota
	declines
	notReached
	unknownAfter  // charges, then the answer is lost
	unknownBefore // times out before the request arrives
	circuitOpen   // its breaker is open
	numBehaviours
)

func (b behaviour) String() string {
	return [...]string{"approves", "declines", "not_reached", "unknown_after", "unknown_before", "circuit_open"}[b]
}

// setup builds one instant processor per behaviour in order, named p0, p1, ..., a breaker set with
// the circuit_open ones tripped, and a router over them.
func setup(t *testing.T, bs []behaviour) (*Router, []*instant.Processor, []string) {
	t.Helper()
	set := breaker.NewSet(breaker.Config{MinCalls: 1, FailureRatio: 1})
	var procs []processor.Processor
	var inst []*instant.Processor
	var names []string
	for i, b := range bs {
		name := fmt.Sprintf("p%d", i)
		var opts []instant.Option
		switch b {
		case declines:
			opts = append(opts, instant.WithDeclines(instant.Decline{Code: "card_declined"}))
		case notReached:
			opts = append(opts, instant.WithFaults(func(instant.Call) instant.Fault { return instant.FaultNotReached }))
		case unknownAfter:
			opts = append(opts, instant.WithFaults(func(c instant.Call) instant.Fault {
				if c.Lookup {
					return instant.FaultNone
				}
				return instant.FaultUnknownAfter
			}))
		case unknownBefore:
			opts = append(opts, instant.WithFaults(func(c instant.Call) instant.Fault {
				if c.Lookup {
					return instant.FaultNone
				}
				return instant.FaultUnknownBefore
			}))
		case circuitOpen:
			tk, _ := set.Allow(name)
			tk.Record(processor.NotReached)
			if _, ok := set.Allow(name); ok {
				t.Fatalf("%s: breaker did not open", name)
			}
		}
		p := instant.New(name, opts...)
		procs, inst, names = append(procs, p), append(inst, p), append(names, name)
	}
	rules := Rules{{Method: Any, Currency: Any, MaxAmount: 1 << 62, Processors: names}}
	r, err := New(rules, procs, set, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r, inst, names
}

func authorize(t *testing.T, r *Router) (Outcome, []string) {
	t.Helper()
	var before []string
	out, err := r.Authorize(context.Background(), processor.AuthorizeRequest{
		Key: "att-1", Money: processor.Money{Amount: 1000, Currency: "USD"}, Method: "card", PaymentToken: "tok",
	}, func(_ context.Context, name string) error {
		before = append(before, name)
		return nil
	})
	if err != nil {
		t.Fatalf("Authorize: %v", err)
	}
	return out, before
}

// Written-out cases: the outcome the payment flow sees for each shape of route.
func TestRouterOutcomes(t *testing.T) {
	for _, c := range []struct {
		route     []behaviour
		status    processor.Status
		decidedBy string // "" when no processor decided
		attempts  string // processor:status per attempt, '!' marks a skipped one
	}{
		{[]behaviour{approves, approves}, processor.Approved, "p0", "p0:approved"},
		{[]behaviour{declines, approves}, processor.Declined, "p0", "p0:declined"},
		{[]behaviour{notReached, approves}, processor.Approved, "p1", "p0:not_reached p1:approved"},
		{[]behaviour{notReached, declines}, processor.Declined, "p1", "p0:not_reached p1:declined"},
		{[]behaviour{unknownAfter, approves}, processor.Unknown, "p0", "p0:unknown"},
		{[]behaviour{unknownBefore, approves}, processor.Unknown, "p0", "p0:unknown"},
		{[]behaviour{circuitOpen, approves}, processor.Approved, "p1", "!p0:not_reached p1:approved"},
		{[]behaviour{circuitOpen, notReached, unknownAfter, approves}, processor.Unknown, "p2", "!p0:not_reached p1:not_reached p2:unknown"},
		{[]behaviour{notReached, circuitOpen}, processor.NotReached, "", "p0:not_reached !p1:not_reached"},
		{[]behaviour{circuitOpen}, processor.NotReached, "", "!p0:not_reached"},
	} {
		t.Run(fmt.Sprint(c.route), func(t *testing.T) {
			r, _, _ := setup(t, c.route)
			out, _ := authorize(t, r)
			var got []string
			for _, a := range out.Attempts {
				s := a.Processor + ":" + a.Result.Status.String()
				if a.Skipped {
					s = "!" + s
				}
				got = append(got, s)
			}
			if out.Result.Status != c.status || out.Processor != c.decidedBy || strings.Join(got, " ") != c.attempts {
				t.Fatalf("got %v by %q via %q; want %v by %q via %q",
					out.Result.Status, out.Processor, strings.Join(got, " "), c.status, c.decidedBy, c.attempts)
			}
		})
	}
}

// Every combination of three processors: the router calls a processor only while all before it
// provably did nothing, never calls one whose circuit is open, so at most one processor ever holds
// the charge, and the outcome names the processor that may hold it.
func TestRouterEveryCombination(t *testing.T) {
	for a := range numBehaviours {
		for b := range numBehaviours {
			for c := range numBehaviours {
				route := []behaviour{a, b, c}
				r, procs, names := setup(t, route)
				out, before := authorize(t, r)

				decided := -1
				for i, bh := range route {
					if bh != notReached && bh != circuitOpen {
						decided = i
						break
					}
				}
				// Who was called, read before the Lookups below add to Calls.
				var called []string
				for i, p := range procs {
					if p.Calls() > 0 {
						called = append(called, names[i])
					}
				}
				charged := 0
				for i, p := range procs {
					wantCalls := int64(0)
					if route[i] != circuitOpen && (decided < 0 || i <= decided) {
						wantCalls = 1
					}
					if p.Calls() != wantCalls {
						t.Errorf("%v: %s got %d calls, want %d", route, names[i], p.Calls(), wantCalls)
					}
					look, _ := p.Lookup(context.Background(), processor.OpAuthorize, "att-1")
					if look.Status == processor.Approved {
						charged++
					}
				}
				if charged > 1 {
					t.Errorf("%v: charged at %d processors", route, charged)
				}
				if decided < 0 {
					if out.Result.Status != processor.NotReached || out.Processor != "" || charged != 0 {
						t.Errorf("%v: nothing decided but outcome %v by %q, %d charged", route, out.Result.Status, out.Processor, charged)
					}
				} else if out.Processor != names[decided] {
					t.Errorf("%v: decided by %q, want %q", route, out.Processor, names[decided])
				}
				if len(out.Attempts) != min(decided+1, len(route)) && !(decided < 0 && len(out.Attempts) == len(route)) {
					t.Errorf("%v: %d attempts recorded", route, len(out.Attempts))
				}
				// BeforeCall ran for exactly the processors called, in order.
				if strings.Join(before, ",") != strings.Join(called, ",") {
					t.Errorf("%v: BeforeCall for %v, called %v", route, before, called)
				}
			}
		}
	}
}

func TestBeforeCallErrorStopsTheRoute(t *testing.T) {
	r, procs, _ := setup(t, []behaviour{notReached, approves})
	boom := errors.New("store down")
	n := 0
	_, err := r.Authorize(context.Background(), processor.AuthorizeRequest{
		Key: "k", Money: processor.Money{Amount: 1, Currency: "USD"}, Method: "card",
	}, func(context.Context, string) error {
		if n++; n == 2 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the BeforeCall error", err)
	}
	if procs[1].Calls() != 0 {
		t.Fatal("the processor was called after BeforeCall failed")
	}
}

// contractBreaker answers Approved together with an error, which the contract forbids.
type contractBreaker struct{ *instant.Processor }

func (c contractBreaker) Authorize(ctx context.Context, req processor.AuthorizeRequest) (processor.Result, error) {
	res, _ := c.Processor.Authorize(ctx, req)
	return res, errors.New("decode: trailing bytes")
}

func TestAnswerOutsideTheContractIsUnknown(t *testing.T) {
	bad := contractBreaker{instant.New("bad")}
	next := instant.New("next")
	r, err := New(Rules{{Method: Any, Currency: Any, MaxAmount: 1 << 62, Processors: []string{"bad", "next"}}},
		[]processor.Processor{bad, next}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := r.Authorize(context.Background(), processor.AuthorizeRequest{Key: "k", Money: processor.Money{Amount: 1, Currency: "USD"}, Method: "card"}, nil)
	if err != nil || out.Result.Status != processor.Unknown || out.Processor != "bad" || next.Calls() != 0 {
		t.Fatalf("got %v by %q (err %v, next called %d): want unknown by bad, no fallback", out.Result.Status, out.Processor, err, next.Calls())
	}
}

func TestRouterErrors(t *testing.T) {
	p := instant.New("acquirer")
	if _, err := New(Rules{{Method: Any, Currency: Any, Processors: []string{"stripe"}}}, []processor.Processor{p}, nil, nil); errs.KindOf(err) != errs.KindInvalidArgument {
		t.Fatalf("rules naming an unconfigured processor: %v", err)
	}
	if _, err := New(nil, []processor.Processor{p, instant.New("acquirer")}, nil, nil); err == nil {
		t.Fatal("two processors with one name accepted")
	}
	rules, _ := ParseRules("card USD * acquirer")
	r, err := New(rules, []processor.Processor{p}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Authorize(context.Background(), processor.AuthorizeRequest{Key: "k", Money: processor.Money{Amount: 1, Currency: "EUR"}, Method: "card"}, nil)
	if e, ok := errors.AsType[*errs.Error](err); !ok || e.Field != "method" || e.Kind != errs.KindInvalidArgument {
		t.Fatalf("unrouted payment: %v, want InvalidArgument naming method", err)
	}
	_, err = r.Run(context.Background(), []string{"nope"}, func(context.Context, processor.Processor) (processor.Result, error) {
		t.Fatal("called")
		return processor.Result{}, nil
	}, nil)
	if e, ok := errors.AsType[*errs.Error](err); !ok || e.Field != "processor" {
		t.Fatalf("unknown processor in a route: %v", err)
	}
	if _, ok := r.Processor("acquirer"); !ok {
		t.Fatal("Processor(acquirer) not found")
	}
}

// A caller that gives up mid-call must not open the circuit of a healthy processor.
func TestCallerCancelDoesNotCountAgainstTheProcessor(t *testing.T) {
	set := breaker.NewSet(breaker.Config{MinCalls: 1, FailureRatio: 1})
	p := instant.New("acquirer")
	r, _ := New(Rules{{Method: Any, Currency: Any, MaxAmount: 1 << 62, Processors: []string{"acquirer"}}}, []processor.Processor{p}, set, nil)
	ctx, cancel := context.WithCancel(context.Background())
	out, _ := r.Run(ctx, []string{"acquirer"}, func(ctx context.Context, p processor.Processor) (processor.Result, error) {
		cancel()
		return processor.Result{Status: processor.Unknown, Message: "canceled"}, ctx.Err()
	}, nil)
	if out.Result.Status != processor.Unknown {
		t.Fatalf("status %v", out.Result.Status)
	}
	if st := set.Get("acquirer").State(); st != breaker.Closed {
		t.Fatalf("breaker %v after a caller cancel", st)
	}
	// Whereas a real Unknown does count.
	r.Run(context.Background(), []string{"acquirer"}, func(context.Context, processor.Processor) (processor.Result, error) {
		return processor.Result{Status: processor.Unknown}, nil
	}, nil)
	if st := set.Get("acquirer").State(); st != breaker.Open {
		t.Fatalf("breaker %v after an Unknown", st)
	}
}
