package stripeproc

import (
	"context"
	"fmt"
	"strings"

	"github.com/stripe/stripe-go/v82"

	"github.com/bourse-dev/bourse/services/payment/internal/processor"
)

// searchLimit is the page size of a metadata search: a Key names one object, so one page is plenty
// (stripe-mock answers a fixture that does not match, which is skipped).
const searchLimit = 10

// Lookup reports what Stripe did with key for op (see the package comment for what it can know).
// Any failure to ask Stripe is Unknown with a nil error; an unknown op is an error.
func (p *Processor) Lookup(ctx context.Context, op processor.Operation, key string) (processor.Result, error) {
	switch op {
	case processor.OpAuthorize:
		return p.lookupAuthorize(ctx, key), nil
	case processor.OpCapture:
		return p.lookupCapture(ctx, key), nil
	case processor.OpVoid:
		return p.lookupVoid(ctx, key), nil
	case processor.OpRefund:
		return p.lookupRefund(ctx, key), nil
	case processor.OpPayout:
		return p.lookupPayout(ctx, key), nil
	default:
		return processor.Result{}, fmt.Errorf("stripeproc: unknown operation %q", op)
	}
}

func unknown(what string, err error) processor.Result {
	return processor.Result{Status: processor.Unknown, Message: what + ": " + err.Error()}
}

// knownID is the Stripe id of op/key, remembered or from Options.Refs.
func (p *Processor) knownID(ctx context.Context, op processor.Operation, key string) (string, bool, error) {
	if id, ok := p.known.get(op, key); ok {
		return id, true, nil
	}
	if p.refs == nil {
		return "", false, nil
	}
	id, ok, err := p.refs(ctx, op, key)
	return id, ok && id != "", err
}

func (p *Processor) retrieveIntent(ctx context.Context, id string) (*stripe.PaymentIntent, error) {
	return p.sc.V1PaymentIntents.Retrieve(ctx, id, nil)
}

// intentFor finds the PaymentIntent op/key is about: retrieved by its id when that is known
// (remembered, Options.Refs), else searched for by metadata[metaKey] = key and remembered. ok false:
// res answers the Lookup (NotFound, or Unknown when asking failed).
func (p *Processor) intentFor(ctx context.Context, op processor.Operation, metaKey, key string) (*stripe.PaymentIntent, processor.Result, bool) {
	id, known, err := p.knownID(ctx, op, key)
	if err != nil {
		return nil, unknown("refs", err), false
	}
	if known {
		pi, err := p.retrieveIntent(ctx, id)
		if err != nil {
			return nil, unknown("retrieve payment_intent "+id, err), false
		}
		return pi, processor.Result{}, true
	}
	pi, res, found := p.searchIntent(ctx, metaKey, key)
	if found {
		p.known.put(op, key, pi.ID)
	}
	return pi, res, found
}

func (p *Processor) lookupAuthorize(ctx context.Context, key string) processor.Result {
	pi, res, ok := p.intentFor(ctx, processor.OpAuthorize, metadataKey, key)
	if !ok {
		return res
	}
	return fromAuthorization(pi)
}

func (p *Processor) lookupCapture(ctx context.Context, key string) processor.Result {
	pi, res, ok := p.intentFor(ctx, processor.OpCapture, captureKeyMeta, key)
	if !ok {
		return res
	}
	if pi.Metadata[captureKeyMeta] != "" && pi.Metadata[captureKeyMeta] != key {
		// Captured, but by another capture Key: this one never took effect.
		return processor.Result{Status: processor.NotFound, ProcessorRef: pi.ID, Message: "captured under another key"}
	}
	return fromCapture(pi, true)
}

func (p *Processor) lookupVoid(ctx context.Context, key string) processor.Result {
	id, ok, err := p.knownID(ctx, processor.OpVoid, key)
	if err != nil {
		return unknown("refs", err)
	}
	if !ok && p.authKeyOf != nil {
		if authKey, derived := p.authKeyOf(processor.OpVoid, key); derived {
			var r processor.Result
			if id, r, ok = p.findIntent(ctx, authKey); !ok {
				// NotFound: no authorization, so no void of it ever took effect; or Unknown.
				return r
			}
		}
	}
	if !ok {
		return processor.Result{Status: processor.Unknown, Message: "cancel takes no metadata: the PaymentIntent of this void key is not known here (set Options.Refs or AuthorizeKeyOf)"}
	}
	pi, err := p.retrieveIntent(ctx, id)
	if err != nil {
		return unknown("retrieve payment_intent "+id, err)
	}
	return fromVoid(pi, true)
}

// searchIntent finds the PaymentIntent whose metadata[metaKey] is value. Not found is NotFound (a
// search that answered without it) or Unknown (the search failed).
func (p *Processor) searchIntent(ctx context.Context, metaKey, value string) (*stripe.PaymentIntent, processor.Result, bool) {
	params := &stripe.PaymentIntentSearchParams{}
	params.Query = fmt.Sprintf("metadata['%s']:'%s'", metaKey, searchEscape(value))
	params.Limit = stripe.Int64(searchLimit)
	params.Single = true // one page: the Key names one object
	for pi, err := range p.sc.V1PaymentIntents.Search(ctx, params) {
		if err != nil {
			return nil, unknown("search payment_intents", err), false
		}
		if pi.Metadata[metaKey] == value {
			return pi, processor.Result{}, true
		}
	}
	return nil, processor.Result{Status: processor.NotFound, Message: "no PaymentIntent has " + metaKey + " " + value}, false
}

// searchEscape quotes a value for Stripe's search query language, where a string is in quotes and
// a quote or backslash inside it is escaped with a backslash.
func searchEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s)
}

func (p *Processor) lookupRefund(ctx context.Context, key string) processor.Result {
	params := &stripe.RefundListParams{}
	if pi, ok := p.known.get(opRefundIntent, key); ok {
		params.PaymentIntent = stripe.String(pi) // only that PaymentIntent's refunds
	}
	params.Limit = stripe.Int64(100)
	return lookupObject(ctx, p, processor.OpRefund, "refund", key,
		func(ctx context.Context, id string) (*stripe.Refund, error) {
			return p.sc.V1Refunds.Retrieve(ctx, id, nil)
		},
		func() stripe.Seq2[*stripe.Refund, error] { return p.sc.V1Refunds.List(ctx, params) },
		func(r *stripe.Refund) map[string]string { return r.Metadata }, fromRefund)
}

func (p *Processor) lookupPayout(ctx context.Context, key string) processor.Result {
	params := &stripe.PayoutListParams{}
	params.Limit = stripe.Int64(100)
	return lookupObject(ctx, p, processor.OpPayout, "payout", key,
		func(ctx context.Context, id string) (*stripe.Payout, error) {
			return p.sc.V1Payouts.Retrieve(ctx, id, nil)
		},
		func() stripe.Seq2[*stripe.Payout, error] { return p.sc.V1Payouts.List(ctx, params) },
		func(po *stripe.Payout) map[string]string { return po.Metadata }, fromPayout)
}

// lookupObject finds the refund or payout a Key created: retrieved by its id when it is known (this
// process's memory, Options.Refs), else scanned for in the listing.
func lookupObject[T any](ctx context.Context, p *Processor, op processor.Operation, what, key string,
	retrieve func(context.Context, string) (T, error), list func() stripe.Seq2[T, error],
	meta func(T) map[string]string, result func(T) processor.Result) processor.Result {
	id, ok, err := p.knownID(ctx, op, key)
	if err != nil {
		return unknown("refs", err)
	}
	if ok {
		obj, err := retrieve(ctx, id)
		if err != nil {
			return unknown("retrieve "+what+" "+id, err)
		}
		return result(obj)
	}
	return scan(p.maxScan, what+"s", list(), key, meta, result)
}

// scan walks a listing (newest first, strongly consistent at Stripe) for the object carrying key:
// a listing that ends without it is NotFound; one cut short after max objects, or failing, is
// Unknown.
func scan[T any](max int, what string, seq stripe.Seq2[T, error], key string,
	meta func(T) map[string]string, result func(T) processor.Result) processor.Result {
	n := 0
	for obj, err := range seq {
		if err != nil {
			return unknown("list "+what, err)
		}
		if meta(obj)[metadataKey] == key {
			return result(obj)
		}
		if n++; n >= max {
			return processor.Result{Status: processor.Unknown, Message: fmt.Sprintf("not among the newest %d %s", max, what)}
		}
	}
	return processor.Result{Status: processor.NotFound, Message: "no " + what + " carry " + metadataKey + " " + key}
}
