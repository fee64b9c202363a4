// Package stripeproc is the Stripe connector: a processor.Processor over stripe-go v82.
//
// Operations:
//   - Authorize creates and confirms a PaymentIntent in one call (capture_method automatic when
//     Capture is set, manual otherwise), with the Key as Stripe's Idempotency-Key and in the
//     metadata as bourse_key. Only the card method is sent to Stripe; anything Stripe would need
//     the customer for (3-D Secure) fails the attempt instead (error_on_requires_action).
//   - Capture and Void are capture and cancel of that PaymentIntent, Refund creates a refund of it,
//     Payout creates a payout (Payouts API). Each sends its own Key as the Idempotency-Key.
//   - Amounts go to Stripe as they are, in ISO-4217 minor units, which are Stripe's too (JPY 0,
//     USD 2, KWD 3 decimals); Stripe asks three-decimal amounts (BHD, JOD, KWD, OMR, TND) to end
//     in 0 and refuses others (Declined, invalid_request).
//   - A retried call must be the same request: Stripe answers an Idempotency-Key reused with other
//     parameters with idempotency_error, which is Unknown.
//
// Finding the PaymentIntent of an AuthorizeKey (for Capture, Void, Refund): this process's memory of
// its own Authorize answers, then Options.Refs (where payment keeps the ProcessorRef it was given),
// then Stripe's search by metadata.
//
// Outcomes. A PaymentIntent that requires_capture or succeeded is Approved, one that is processing is
// Unknown (Lookup settles it), requires_payment_method and canceled are Declined; a refund or payout
// Stripe accepted (pending, in transit, paid, succeeded) is Approved, failed and canceled are
// Declined. Errors:
//   - 402 (card_error and the other "valid but failed" answers): Declined with Stripe's decline_code
//     (or its error code).
//   - 400/404 invalid_request_error: Declined with Stripe's error code: Stripe acted on nothing, and
//     the same request would be refused by it again.
//   - 401, 403, 429: NotReached: Stripe refused before acting (a key or rate problem of this
//     connector, not of the payment), so another processor may be tried.
//   - idempotency_error, 409 (idempotency_key_in_use), 5xx, api_error, a body that does not parse:
//     Unknown. Stripe saves the outcome of a request that began executing, 500s included, so a
//     retry with the same Key later answers what really happened.
//   - No HTTP answer: NotReached only when no connection was ever handed to the request (refused,
//     unresolvable, TLS handshake failed, context done before dialling): then not one byte of it was
//     written. Once a connection was obtained, any failure (timeout, reset, EOF) is Unknown.
//
// Retries. stripe-go retries network errors, 409s and 5xx up to twice by default, reusing the same
// Idempotency-Key, so its retries cannot charge twice; but a retry that is refused after a first try
// that timed out would make an Unknown look like NotReached. The connector therefore turns stripe-go's
// retries off (MaxNetworkRetries 0): one call is one HTTP exchange, classified as above, and
// retrying is the payment flow's (janitor's) decision. net/http's own replay of a request with an
// Idempotency-Key on a stale keep-alive connection happens after a connection was obtained, so it
// is classified Unknown too.
//
// What Lookup can know. Stripe keeps no index by idempotency key, so Lookup finds objects by the
// bourse_key metadata every create carries:
//   - authorize: search PaymentIntents by metadata. Stripe's search is eventually consistent
//     (typically under a minute behind writes), so an empty answer is NotFound only for a call made
//     longer ago than that: a janitor must not look a Stripe attempt up sooner (MinLookupAge says how
//     long).
//   - capture: the PaymentIntent the capture was sent to (memory, Options.Refs), else a search
//     for the capture Key, which capture writes into the PaymentIntent's metadata; its status
//     tells: captured, canceled, or still requires_capture (NotFound: never took effect).
//   - void: cancel takes no metadata, so the PaymentIntent comes from memory, Options.Refs, or
//     the authorization Key Options.AuthorizeKeyOf derives; without them, Unknown.
//   - refund, payout: retrieved by id when remembered or given by Options.Refs, else listed (a
//     strongly consistent read) newest first up to Options.MaxLookupScan objects: a listing that
//     ends is NotFound, one cut short by the bound is Unknown.
//
// stripe-mock (the tests', and make run's, Stripe) is stateless: it validates each request against
// Stripe's OpenAPI spec and answers from fixtures (a PaymentIntent always requires_payment_method,
// lists with one object whose metadata is empty). Against it the connector's requests are checked
// and its response mapping exercised; declines, state and Lookup's answers are not real.
package stripeproc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v82"

	"github.com/bourse-dev/bourse/services/payment/internal/processor"
)

// Name is the connector's routing name.
const Name = "stripe"

// MinLookupAge is how long after a call its Key may be looked up by search and an empty answer
// trusted as NotFound: Stripe's search index lags writes, typically by under a minute.
const MinLookupAge = 2 * time.Minute

const (
	// DefaultTimeout bounds one HTTP exchange with Stripe when the context does not bound it sooner.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxLookupScan bounds how many refunds or payouts Lookup lists before answering Unknown.
	DefaultMaxLookupScan = 1000
	// DefaultRememberKeys bounds the Keys whose Stripe ids the connector remembers.
	DefaultRememberKeys = 1 << 16
	// metadataKey carries the Key on every object the connector creates.
	metadataKey = "bourse_key"
)

// RefsFunc tells the Stripe id (Result.ProcessorRef) payment stored for a Key it was answered for:
// ok false when it has none. Called for the AuthorizeKey of Capture, Void and Refund, and for the
// Key of a Lookup.
type RefsFunc func(ctx context.Context, op processor.Operation, key string) (ref string, ok bool, err error)

// Options configure the connector. Key is required; the rest have defaults.
type Options struct {
	// Key is the secret API key (sk_test_... or sk_live_...; stripe-mock takes any sk_test_<word>).
	Key string
	// URL is Stripe's API base URL: empty for api.stripe.com, http://127.0.0.1:<port> for
	// stripe-mock.
	URL string
	// Timeout bounds one HTTP exchange (DefaultTimeout when 0). A timeout is Unknown.
	Timeout time.Duration
	// HTTPClient replaces the connector's client (its Timeout then rules); no proxy from the
	// environment is used by the default one.
	HTTPClient *http.Client
	// Refs is where payment keeps the ProcessorRef of earlier answers (optional).
	Refs RefsFunc
	// AuthorizeKeyOf derives the authorization's Key from a void Key, for a Lookup of a void this
	// process did not send (optional; e.g. strip the ":void" suffix the payment flow adds). A capture
	// needs none: its Key is in its PaymentIntent's metadata.
	AuthorizeKeyOf func(op processor.Operation, key string) (string, bool)
	// MaxLookupScan bounds the refunds or payouts one Lookup lists (DefaultMaxLookupScan when 0).
	MaxLookupScan int
	// RememberKeys bounds the Key → Stripe id memory (DefaultRememberKeys when 0).
	RememberKeys int
	// Logger receives stripe-go's warnings and errors (slog.Default() when nil). Response bodies,
	// which carry client secrets, are never logged.
	Logger *slog.Logger
}

// Processor is the Stripe connector. Safe for concurrent use.
type Processor struct {
	sc        *stripe.Client
	refs      RefsFunc
	authKeyOf func(processor.Operation, string) (string, bool)
	maxScan   int
	known     *memory
}

var _ processor.Processor = (*Processor)(nil)

// New builds the connector. It does not call Stripe.
func New(o Options) (*Processor, error) {
	if !strings.HasPrefix(o.Key, "sk_") && !strings.HasPrefix(o.Key, "rk_") {
		return nil, errors.New("stripeproc: Key must be a secret (sk_...) or restricted (rk_...) key")
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{
			Timeout: cmp.Or(o.Timeout, DefaultTimeout),
			Transport: &http.Transport{
				Proxy:               nil,
				MaxIdleConnsPerHost: 16,
				IdleConnTimeout:     90 * time.Second,
				TLSHandshakeTimeout: 10 * time.Second,
			},
		}
	}
	cfg := &stripe.BackendConfig{
		HTTPClient:        hc,
		MaxNetworkRetries: stripe.Int64(0),
		LeveledLogger:     &leveledLogger{l: cmp.Or(o.Logger, slog.Default()).With("processor", Name)},
		EnableTelemetry:   stripe.Bool(false),
	}
	if o.URL != "" {
		if !strings.HasPrefix(o.URL, "http://") && !strings.HasPrefix(o.URL, "https://") {
			return nil, fmt.Errorf("stripeproc: URL %q is not http(s)://host[:port]", o.URL)
		}
		cfg.URL = stripe.String(strings.TrimSuffix(o.URL, "/"))
	}
	// With a URL every backend (API, Connect, Uploads, MeterEvents) goes to it: stripe-mock serves
	// them all. Without one each keeps its Stripe host.
	backends := stripe.NewBackendsWithConfig(cfg)
	return &Processor{
		sc:        stripe.NewClient(o.Key, stripe.WithBackends(backends)),
		refs:      o.Refs,
		authKeyOf: o.AuthorizeKeyOf,
		maxScan:   cmp.Or(o.MaxLookupScan, DefaultMaxLookupScan),
		known:     newMemory(cmp.Or(o.RememberKeys, DefaultRememberKeys)),
	}, nil
}

// Name is "stripe".
func (p *Processor) Name() string { return Name }

// leveledLogger hands stripe-go's log lines to slog. Debug lines (whole response bodies) are
// dropped; a request line is debug, warnings and errors are warnings: the connector reports every
// failure in its Result, so a log line is context, not the error.
type leveledLogger struct{ l *slog.Logger }

func (g *leveledLogger) Debugf(string, ...any) {}
func (g *leveledLogger) Infof(format string, v ...any) {
	g.l.Debug(fmt.Sprintf(format, v...))
}
func (g *leveledLogger) Warnf(format string, v ...any)  { g.l.Warn(fmt.Sprintf(format, v...)) }
func (g *leveledLogger) Errorf(format string, v ...any) { g.l.Warn(fmt.Sprintf(format, v...)) }

// maxKeyFile bounds what ReadKeyFile reads: a Stripe key is about a hundred bytes.
const maxKeyFile = 4 << 10

// ReadKeyFile reads the secret key from the first line of path (make run writes
// .run/keys/stripe.key), so it is never in a flag or the environment. The error never repeats
// what the file holds.
func ReadKeyFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxKeyFile {
		return "", fmt.Errorf("stripeproc: %s is over %d bytes: not a key file", path, maxKeyFile)
	}
	key, _, _ := strings.Cut(string(b), "\n")
	key = strings.TrimSpace(key)
	if !strings.HasPrefix(key, "sk_") && !strings.HasPrefix(key, "rk_") {
		return "", fmt.Errorf("stripeproc: the first line of %s is not a secret (sk_...) or restricted (rk_...) key", path)
	}
	return key, nil
}
