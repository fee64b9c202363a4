// Package flows runs the payment service's money movements as steps over the durable state: deposits
// (fraud check, routing, attempts, capture, cancel), refunds and payouts (sagas with risk), the janitor
// that settles what a crash or a lost answer left open, and the outbox dispatcher that credits risk.
//
// Every step is idempotent and every state change is a compare-and-set in the store, so the request
// path, the janitor and the dispatcher may run the same step at once, in one process or in several
// replicas on one database: one of them changes the state, the others find it changed and stop.
// Processors are called with the attempt, refund or payout id as their idempotency key and risk with
// the payment, refund or payout id as its ref, so a step repeated after a crash never acts twice.
package flows

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/pkg/fraud"
	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/idempotency"
	"github.com/bourse-dev/bourse/services/payment/internal/processor"
	"github.com/bourse-dev/bourse/services/payment/internal/store"
)

// Risk is what the flows need of the risk service. Amounts are decimal strings in major units. The
// error's kind tells a refusal (InvalidArgument, NotFound, FailedPrecondition, AlreadyExists: final)
// from a failure to get an answer (anything else: retry later with the same ref).
type Risk interface {
	Credit(ctx context.Context, account, asset, amount, ref string) error
	Debit(ctx context.Context, account, asset, amount, ref string) error
}

// Router gives the ordered processors to try for a payment or payout; an error (InvalidArgument
// naming the field) when no processor takes it.
type Router interface {
	Route(method domain.Method, m domain.Money) ([]processor.Processor, error)
}

// Static routes everything to the same ordered list.
type Static []processor.Processor

// Route returns the list.
func (s Static) Route(domain.Method, domain.Money) ([]processor.Processor, error) { return s, nil }

// FraudVerdict is a fraud check's answer.
type FraudVerdict struct {
	Score   float64 // in [0, 1]
	Decline bool
}

// Fraud scores a deposit before it is authorized. An error means no verdict (inference down); the
// implementation applies its own fail-open/fail-closed policy and returns a verdict instead when it
// has one.
type Fraud interface {
	Check(ctx context.Context, f fraud.Features, m domain.Money) (FraudVerdict, error)
}

// Config configures a Service.
type Config struct {
	Store      *store.Store
	Router     Router
	Processors []processor.Processor // every processor the router may name, for lookups by name
	Risk       Risk
	Fraud      Fraud // nil: no fraud check
	Logger     *slog.Logger

	// ProcessorTimeout bounds each processor call (default 10s).
	ProcessorTimeout time.Duration
	// RiskTimeout bounds each risk call (default 5s).
	RiskTimeout time.Duration
	// Retention keeps idempotency records (default 24h).
	Retention time.Duration
	// SettleAfter is how long an open operation is left to the request that started it before the
	// janitor takes it over (default 3 × ProcessorTimeout: a live request has given up by then).
	SettleAfter time.Duration
	// MaxBackoff caps the janitor's and the dispatcher's retry interval (default 1h).
	MaxBackoff time.Duration
	// CaptureWindow is how long a manual-capture authorization may wait for its capture before the
	// janitor voids it and cancels the payment (default 7 days, like Stripe).
	CaptureWindow time.Duration
	// OutboxLease is how long a claimed outbox item is its claimer's (default DefaultOutboxLease).
	OutboxLease time.Duration
}

// Service runs the flows.
type Service struct {
	cfg   Config
	st    *store.Store
	log   *slog.Logger
	procs map[string]processor.Processor
	// recent orders a deposit's claim: its record read first for a key seen lately (claimWith).
	recent *recentKeys
	// staleFrom is where the janitor's next look at stale idempotency records starts (janitor.go).
	staleFrom staleCursor

	beforeAuthorize func(domain.Attempt) // tests: a request stalling before its processor call
}

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.ProcessorTimeout <= 0 {
		cfg.ProcessorTimeout = 10 * time.Second
	}
	if cfg.RiskTimeout <= 0 {
		cfg.RiskTimeout = 5 * time.Second
	}
	if cfg.Retention <= 0 {
		cfg.Retention = idempotency.DefaultRetention
	}
	if cfg.SettleAfter <= 0 {
		cfg.SettleAfter = 3 * cfg.ProcessorTimeout
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = time.Hour
	}
	if cfg.CaptureWindow <= 0 {
		cfg.CaptureWindow = DefaultCaptureWindow
	}
	if cfg.OutboxLease <= 0 {
		cfg.OutboxLease = DefaultOutboxLease
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Service{cfg: cfg, st: cfg.Store, log: cfg.Logger, procs: map[string]processor.Processor{}, recent: newRecentKeys()}
	for _, p := range cfg.Processors {
		s.procs[p.Name()] = p
	}
	if st, ok := cfg.Router.(Static); ok {
		for _, p := range st {
			s.procs[p.Name()] = p
		}
	}
	return s
}

// Store is the service's store.
func (s *Service) Store() *store.Store { return s.st }

// Idempotency methods (the operation a key was used for).
const (
	MethodCreatePayment  = "CreatePayment"
	MethodCapturePayment = "CapturePayment"
	MethodCancelPayment  = "CancelPayment"
	MethodRefundPayment  = "RefundPayment"
	MethodCreatePayout   = "CreatePayout"
	MethodCreateEndpoint = "CreateWebhookEndpoint"
)

// claim runs begin in one transaction with the claim of (caller, key). It returns replay non-nil when
// the key already has a record: its saved response (to decode) or the saved or refusing error. When
// begin fails the transaction rolls back, so a request refused before it began executing saves no
// record.
func (s *Service) claim(ctx context.Context, caller, key, method string, params any, objectID string, begin func(*store.Tx) error) (replay []byte, err error) {
	return s.claimWith(ctx, caller, key, method, params, objectID, nil, begin)
}

// claimWith is claim that first offers a new deposit's claim to a deposit lane, when lane is set:
// what begin would write, written with other requests' claims. A key the lane could not claim (it
// has a record) takes the general path, which reads the record.
func (s *Service) claimWith(ctx context.Context, caller, key, method string, params any, objectID string, lane *store.NewDeposit,
	begin func(*store.Tx) error) (replay []byte, err error) {
	rec := idempotency.Record{Caller: caller, Key: key, Method: method, Fingerprint: idempotency.Fingerprint(params),
		State: idempotency.InFlight, ObjectID: objectID}
	// A deposit's claim can go to a lane, which claims a new key without a read before it but makes
	// a retry wait for its writer: a key seen lately (a retry, most likely) reads its record first,
	// any other key tries the lane first (see recentKeys).
	inLane := func() bool {
		lane.Key = rec
		lane.Key.CreatedAt = lane.At
		claimed, err := s.st.ClaimDeposit(ctx, lane)
		if err != nil {
			s.log.Warn("deposit lane batch failed; the claim takes the general path", "err", err)
		}
		return claimed
	}
	retry := false
	if lane != nil {
		retry = s.recent.seen(caller, key)
		s.recent.remember(caller, key)
	}
	if lane != nil && !retry && inLane() {
		return nil, nil
	}
	// A finished record is answered as it stands, without a write transaction.
	existing, finished, err := s.st.FinishedKey(ctx, caller, key, s.cfg.Retention)
	if err != nil {
		return nil, err
	}
	if !finished && retry && inLane() {
		return nil, nil
	}
	if !finished {
		var claimed bool
		err = s.st.InTx(ctx, func(tx *store.Tx) error {
			var err error
			existing, claimed, err = tx.ClaimKey(ctx, rec, s.cfg.Retention)
			if err != nil || !claimed {
				return err
			}
			return begin(tx)
		})
		if err != nil {
			return nil, err
		}
		// A lane batch whose commit reported an error may have committed all the same: a record
		// in flight for this request's own object is its own claim (object ids are never reused).
		if claimed || lane != nil && existing.State == idempotency.InFlight && existing.ObjectID == objectID &&
			existing.Method == method && existing.Fingerprint == rec.Fingerprint {
			return nil, nil
		}
	}
	if err := existing.Check(method, rec.Fingerprint); err != nil {
		return nil, err
	}
	if len(existing.Response) == 0 {
		return nil, errs.New(errs.KindInternal, "idempotency record of %s has no response", key)
	}
	return existing.Response, nil
}

// complete saves the result of the request that owns (caller, key).
func (s *Service) complete(ctx context.Context, caller, key string, result any) {
	b, err := json.Marshal(result)
	if err == nil {
		err = s.st.InTx(ctx, func(tx *store.Tx) error { return tx.CompleteKey(ctx, caller, key, b, nil) })
	}
	if err != nil {
		// The janitor completes records whose object has settled, so a retry is not refused forever.
		s.log.Warn("saving an idempotent result", "err", err)
	}
}

// unclaim deletes the record of a request that provably did nothing (every processor unreachable):
// like a validation failure, it is not saved, so the client may retry with the same key.
func (s *Service) unclaim(ctx context.Context, tx *store.Tx, caller, key string) error {
	return tx.DeleteKey(ctx, caller, key)
}

// refusal reports whether a risk error is a final refusal (as opposed to no answer).
func refusal(err error) bool {
	switch errs.KindOf(err) {
	case errs.KindInvalidArgument, errs.KindNotFound, errs.KindFailedPrecondition, errs.KindAlreadyExists:
		return true
	}
	return false
}

// backoff is the wait before retry n (1-based): doubling from a second, capped.
func (s *Service) backoff(n int) time.Duration {
	d := time.Second
	for i := 1; i < n && d < s.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, s.cfg.MaxBackoff)
}

func (s *Service) procCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	// A request whose client went away still finishes its processor call: the outcome must be
	// recorded either way, and a cancelled call is an UNKNOWN for the janitor.
	return context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ProcessorTimeout)
}

func (s *Service) riskCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), s.cfg.RiskTimeout)
}

// resultStatus folds a processor call's (Result, error) into one status: an error is UNKNOWN unless
// the result says the request never reached the processor.
func resultStatus(res processor.Result, err error) processor.Status {
	if err != nil && res.Status != processor.NotReached {
		return processor.Unknown
	}
	return res.Status
}

var errConflict = store.ErrConflict

func isConflict(err error) bool { return errors.Is(err, errConflict) }
