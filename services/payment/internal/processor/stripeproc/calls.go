package stripeproc

import (
	"context"
	"fmt"
	"strings"
	"unicode"

	"github.com/stripe/stripe-go/v82"

	"github.com/bourse-dev/bourse/services/payment/internal/processor"
)

// captureKeyMeta carries a capture's Key on its PaymentIntent (capture takes metadata), so a Lookup
// of the capture can search for it.
const captureKeyMeta = "bourse_capture_key"

// Stripe's limits on what the connector sends; beyond them Stripe refuses the request, so the
// connector refuses it first, naming the field.
const (
	maxKeyLen        = 255 // Idempotency-Key
	maxMetadataKeys  = 50
	maxMetaKeyLen    = 40
	maxMetaValueLen  = 500
	maxDescriptorLen = 22 // statement_descriptor_suffix, with the account's prefix
)

// refused is the answer to a request the connector will not send: nothing reached Stripe, and the
// same request would be refused again, so it is a final Declined, as at Stripe itself.
func refused(field, format string, args ...any) processor.Result {
	return processor.Result{Status: processor.Declined, DeclineCode: "invalid_request",
		Message: field + ": " + fmt.Sprintf(format, args...)}
}

func checkKey(field, key string) (processor.Result, bool) {
	if key == "" || strings.TrimSpace(key) != key {
		return refused(field, "must be non-empty without surrounding spaces"), false
	}
	if len(key) > maxKeyLen {
		return refused(field, "is %d bytes, Stripe takes at most %d", len(key), maxKeyLen), false
	}
	return processor.Result{}, true
}

func checkMoney(m processor.Money) (processor.Result, bool) {
	if m.Amount <= 0 {
		return refused("money.amount", "must be positive, got %d", m.Amount), false
	}
	if len(m.Currency) != 3 || strings.ToUpper(m.Currency) != m.Currency {
		return refused("money.currency", "must be an upper-case ISO-4217 code, got %q", m.Currency), false
	}
	return processor.Result{}, true
}

// metadata is the caller's metadata plus the Key under metaKey, within Stripe's limits.
func metadata(in map[string]string, metaKey, key string) (map[string]string, processor.Result, bool) {
	out := make(map[string]string, len(in)+1)
	for k, v := range in {
		if len(k) > maxMetaKeyLen || len(v) > maxMetaValueLen {
			return nil, refused("metadata", "key %.40q or its value is over Stripe's %d/%d limit", k, maxMetaKeyLen, maxMetaValueLen), false
		}
		out[k] = v
	}
	out[metaKey] = key
	if len(out) > maxMetadataKeys {
		return nil, refused("metadata", "%d keys, Stripe takes at most %d", len(out), maxMetadataKeys), false
	}
	return out, processor.Result{}, true
}

// descriptor fits a statement descriptor suffix into Stripe's rules: ASCII, at most 22 characters,
// none of < > \ ' " *, at least one letter. Card networks print it after the account's prefix.
func descriptor(d string) string {
	d = strings.Map(func(r rune) rune {
		if strings.ContainsRune(`<>\'"*`, r) || r > unicode.MaxASCII || unicode.IsControl(r) {
			return -1
		}
		return r
	}, d)
	d = strings.TrimSpace(d[:min(len(d), maxDescriptorLen)])
	if strings.Trim(d, "0123456789 ") == "" {
		return "" // Stripe refuses a descriptor without a letter; none is better than a refusal
	}
	return d
}

// checked is what the checks every call starts with found: the amount in Stripe's units (when the
// call moves money) and the authorization's PaymentIntent (when the call is on one).
type checked struct {
	amount int64
	intent string
}

// check refuses, before anything is sent, a call whose Key, authorization Key (when onAuth) or money
// (when m is not nil) Stripe would refuse, in that order, and finds the authorization's
// PaymentIntent. ok false: res answers the call.
func (p *Processor) check(ctx context.Context, key string, onAuth bool, authorizeKey string, m *processor.Money) (c checked, res processor.Result, ok bool) {
	if res, ok = checkKey("key", key); !ok {
		return c, res, false
	}
	if onAuth {
		if res, ok = checkKey("authorize_key", authorizeKey); !ok {
			return c, res, false
		}
	}
	if m != nil {
		if res, ok = checkMoney(*m); !ok {
			return c, res, false
		}
		if c.amount, res, ok = toStripe(*m); !ok {
			return c, res, false
		}
	}
	if onAuth {
		if c.intent, res, ok = p.intentOf(ctx, authorizeKey); !ok {
			return c, res, false
		}
	}
	return c, processor.Result{}, true
}

// idempotent is a request's parameters, which carry its Idempotency-Key.
type idempotent interface{ SetIdempotencyKey(string) }

// send makes one Stripe call with key as its Idempotency-Key. ok false: res is the failure,
// classified by whether the request ever got a connection (see the package comment).
func send[T any](ctx context.Context, key string, params idempotent, call func(context.Context) (T, error)) (v T, res processor.Result, ok bool) {
	params.SetIdempotencyKey(key)
	tctx, st := tracked(ctx)
	v, err := call(tctx)
	if err != nil {
		return v, failure(err, st), false
	}
	return v, processor.Result{}, true
}

// Authorize creates and confirms a PaymentIntent (card only), capturing at once when req.Capture.
// PaymentToken is a Stripe PaymentMethod id (pm_...).
func (p *Processor) Authorize(ctx context.Context, req processor.AuthorizeRequest) (processor.Result, error) {
	c, r, ok := p.check(ctx, req.Key, false, "", &req.Money)
	if !ok {
		return r, nil
	}
	if req.Method != "card" {
		// A routing mistake, not the payment's fault: another processor may take the method.
		return processor.Result{Status: processor.NotReached, Message: fmt.Sprintf("method %q is not sent to stripe (card only)", req.Method)}, nil
	}
	if req.PaymentToken == "" {
		return refused("payment_token", "is required"), nil
	}
	md, r, ok := metadata(req.Metadata, metadataKey, req.Key)
	if !ok {
		return r, nil
	}
	captureMethod := stripe.PaymentIntentCaptureMethodManual
	if req.Capture {
		captureMethod = stripe.PaymentIntentCaptureMethodAutomatic
	}
	params := &stripe.PaymentIntentCreateParams{
		Amount:                stripe.Int64(c.amount),
		Currency:              stripe.String(strings.ToLower(req.Money.Currency)),
		Confirm:               stripe.Bool(true),
		CaptureMethod:         stripe.String(string(captureMethod)),
		PaymentMethod:         stripe.String(req.PaymentToken),
		PaymentMethodTypes:    []*string{stripe.String("card")},
		ErrorOnRequiresAction: stripe.Bool(true),
		Metadata:              md,
	}
	if d := descriptor(req.StatementDescr); d != "" {
		params.StatementDescriptorSuffix = stripe.String(d)
	}
	pi, res, ok := send(ctx, req.Key, params, func(ctx context.Context) (*stripe.PaymentIntent, error) {
		return p.sc.V1PaymentIntents.Create(ctx, params)
	})
	if !ok {
		res.Money = req.Money
		p.known.put(processor.OpAuthorize, req.Key, res.ProcessorRef) // a 402 names its PaymentIntent
		return res, nil
	}
	p.known.put(processor.OpAuthorize, req.Key, pi.ID)
	return fromAuthorization(pi), nil
}

// Capture captures req.Money of the authorization's PaymentIntent.
func (p *Processor) Capture(ctx context.Context, req processor.CaptureRequest) (processor.Result, error) {
	c, r, ok := p.check(ctx, req.Key, true, req.AuthorizeKey, &req.Money)
	if !ok {
		return r, nil
	}
	// Remembered before sending: if the answer is lost, Lookup still knows where to look.
	p.known.put(processor.OpCapture, req.Key, c.intent)
	params := &stripe.PaymentIntentCaptureParams{
		AmountToCapture: stripe.Int64(c.amount),
		Metadata:        map[string]string{captureKeyMeta: req.Key},
	}
	pi, res, ok := send(ctx, req.Key, params, func(ctx context.Context) (*stripe.PaymentIntent, error) {
		return p.sc.V1PaymentIntents.Capture(ctx, c.intent, params)
	})
	if !ok {
		res.ProcessorRef, res.Money = c.intent, req.Money
		return res, nil
	}
	return fromCapture(pi, false), nil
}

// Void cancels the authorization's PaymentIntent.
func (p *Processor) Void(ctx context.Context, req processor.VoidRequest) (processor.Result, error) {
	c, r, ok := p.check(ctx, req.Key, true, req.AuthorizeKey, nil)
	if !ok {
		return r, nil
	}
	p.known.put(processor.OpVoid, req.Key, c.intent)
	params := &stripe.PaymentIntentCancelParams{}
	pi, res, ok := send(ctx, req.Key, params, func(ctx context.Context) (*stripe.PaymentIntent, error) {
		return p.sc.V1PaymentIntents.Cancel(ctx, c.intent, params)
	})
	if !ok {
		res.ProcessorRef = c.intent
		return res, nil
	}
	return fromVoid(pi, false), nil
}

// Refund refunds req.Money of the authorization's PaymentIntent.
func (p *Processor) Refund(ctx context.Context, req processor.RefundRequest) (processor.Result, error) {
	c, r, ok := p.check(ctx, req.Key, true, req.AuthorizeKey, &req.Money)
	if !ok {
		return r, nil
	}
	p.known.put(opRefundIntent, req.Key, c.intent)
	params := &stripe.RefundCreateParams{
		PaymentIntent: stripe.String(c.intent),
		Amount:        stripe.Int64(c.amount),
		Metadata:      map[string]string{metadataKey: req.Key},
	}
	rf, res, ok := send(ctx, req.Key, params, func(ctx context.Context) (*stripe.Refund, error) {
		return p.sc.V1Refunds.Create(ctx, params)
	})
	if !ok {
		res.Money = req.Money
		return res, nil
	}
	p.known.put(processor.OpRefund, req.Key, rf.ID)
	return fromRefund(rf), nil
}

// Payout pays req.Money out to req.Destination (a bank account or card id of the Stripe account;
// empty for the account's default).
func (p *Processor) Payout(ctx context.Context, req processor.PayoutRequest) (processor.Result, error) {
	c, r, ok := p.check(ctx, req.Key, false, "", &req.Money)
	if !ok {
		return r, nil
	}
	md, r, ok := metadata(req.Metadata, metadataKey, req.Key)
	if !ok {
		return r, nil
	}
	params := &stripe.PayoutCreateParams{
		Amount:   stripe.Int64(c.amount),
		Currency: stripe.String(strings.ToLower(req.Money.Currency)),
		Metadata: md,
	}
	if req.Destination != "" {
		params.Destination = stripe.String(req.Destination)
	}
	po, res, ok := send(ctx, req.Key, params, func(ctx context.Context) (*stripe.Payout, error) {
		return p.sc.V1Payouts.Create(ctx, params)
	})
	if !ok {
		res.Money = req.Money
		return res, nil
	}
	p.known.put(processor.OpPayout, req.Key, po.ID)
	return fromPayout(po), nil
}

// opRefundIntent remembers the PaymentIntent a refund Key was for, so a Lookup of the refund lists
// that PaymentIntent's refunds only.
const opRefundIntent processor.Operation = "refund_intent"

// intentOf finds the PaymentIntent of an authorization Key for an operation on it. When it cannot
// be found the answer is NotReached: nothing was sent, and a search that lags may find it later.
func (p *Processor) intentOf(ctx context.Context, authorizeKey string) (string, processor.Result, bool) {
	id, res, ok := p.findIntent(ctx, authorizeKey)
	if !ok {
		res.Status = processor.NotReached
		res.Message = "payment intent of the authorization: " + res.Message
	}
	return id, res, ok
}

// findIntent finds the PaymentIntent of an authorization Key: remembered, given by Options.Refs, or
// searched for. Not found is NotFound (nobody knows it) or Unknown (Refs or the search failed).
func (p *Processor) findIntent(ctx context.Context, authorizeKey string) (string, processor.Result, bool) {
	id, ok, err := p.knownID(ctx, processor.OpAuthorize, authorizeKey)
	if err != nil {
		return "", unknown("refs", err), false
	}
	if ok {
		p.known.put(processor.OpAuthorize, authorizeKey, id)
		return id, processor.Result{}, true
	}
	pi, res, found := p.searchIntent(ctx, metadataKey, authorizeKey)
	if !found {
		return "", res, false
	}
	p.known.put(processor.OpAuthorize, authorizeKey, pi.ID)
	return pi.ID, processor.Result{}, true
}
