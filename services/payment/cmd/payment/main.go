// Command payment serves bourse.payment.v1.PaymentService: deposits, refunds and withdrawals for
// trading accounts, through the routed processors, with idempotency keys, a double-entry ledger and
// an outbox that credits risk, in SQLite (default) or PostgreSQL (several replicas may share one).
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/bourse-dev/bourse/pkg/auth"
	"github.com/bourse-dev/bourse/pkg/client"
	pkgfraud "github.com/bourse-dev/bourse/pkg/fraud"
	paymentv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/payment/v1"
	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
	inferencepb "github.com/bourse-dev/bourse/pkg/gen/inference"
	"github.com/bourse-dev/bourse/pkg/server"
	"github.com/bourse-dev/bourse/services/payment/internal/breaker"
	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/flows"
	"github.com/bourse-dev/bourse/services/payment/internal/fraud"
	"github.com/bourse-dev/bourse/services/payment/internal/grpcapi"
	"github.com/bourse-dev/bourse/services/payment/internal/idempotency"
	"github.com/bourse-dev/bourse/services/payment/internal/processor"
	"github.com/bourse-dev/bourse/services/payment/internal/processor/acquirerproc"
	"github.com/bourse-dev/bourse/services/payment/internal/processor/instant"
	"github.com/bourse-dev/bourse/services/payment/internal/processor/stripeproc"
	"github.com/bourse-dev/bourse/services/payment/internal/routing"
	"github.com/bourse-dev/bourse/services/payment/internal/store"
	"github.com/bourse-dev/bourse/services/payment/internal/webhook"
)

func main() {
	app := server.NewApp("payment", server.Defaults{GRPCAddr: "127.0.0.1:7005", MetricsAddr: "127.0.0.1:9105"})
	fs := app.Flags()
	dataDir := fs.String("data-dir", "data/payment", "directory of the SQLite database (when --database-url is empty)")
	dbURL := fs.String("database-url", "", "postgres://... for PostgreSQL (replicas may share it), or a SQLite file path (default <data-dir>/payment.db)")
	procList := fs.String("processors", "acquirer", "routing order of the processors, comma-separated: acquirer, stripe, instant (in-process, tests and benchmarks)")
	acquirerAddr := fs.String("acquirer-addr", "consul:///acquirer", "the acquirer: consul:///acquirer or host:port")
	acquirerKeyFile := fs.String("acquirer-api-key-file", "", "file holding the key payment presents to the acquirer (service:payment in its keyring)")
	stripeURL := fs.String("stripe-url", "", "Stripe's API base URL (empty: api.stripe.com; http://127.0.0.1:12111 for stripe-mock)")
	stripeKeyFile := fs.String("stripe-key-file", "", "file holding Stripe's secret key (sk_...), first line")
	riskAddr := fs.String("risk-addr", "consul:///risk", "the risk service: consul:///risk or host:port")
	riskKeyFile := fs.String("risk-api-key-file", "", "file holding the key payment presents to risk (service:payment in risk's keyring); re-read when it changes")
	routingRules := fs.String("routing", "", "routing rules (see internal/routing: '<method> <currency> <amount> <processor>,...' per line or ';'); empty: every payment tries --processors in order")
	fraudModel := fs.String("fraud-model", "", "inference model that scores deposits before authorization (e.g. fraud); empty: no fraud check")
	inferenceAddr := fs.String("inference-addr", "consul:///inference", "the inference service: consul:///inference or host:port")
	inferenceKeyFile := fs.String("inference-api-key-file", "", "file holding the key payment presents to inference")
	fraudThreshold := fs.Float64("fraud-threshold", 0.9, "a score above it declines with fraud_suspected")
	fraudTimeout := fs.Duration("fraud-timeout", 150*time.Millisecond, "deadline of the fraud score; past it the fail-open policy decides")
	fraudFailOpen := fs.String("fraud-fail-open", "", "per currency, the largest amount (minor units) that goes on unscored when inference does not answer, e.g. USD:50000,EUR:50000; others are declined")
	breakers := fs.Bool("circuit-breakers", true, "put each processor behind a circuit breaker (open after half the calls of 30 s fail technically; 10 s cool-down)")
	procTimeout := fs.Duration("processor-timeout", 10*time.Second, "deadline of each processor call; past it the outcome is UNKNOWN and the janitor looks it up")
	riskTimeout := fs.Duration("risk-timeout", 5*time.Second, "deadline of each call to risk")
	settleAfter := fs.Duration("settle-after", 0, "how long an open operation is left to its request before the janitor takes it over; at least 4/3 of --processor-timeout (default 3 × --processor-timeout)")
	janitorEvery := fs.Duration("janitor-interval", time.Second, "how often the janitor looks for open operations")
	outboxEvery := fs.Duration("outbox-interval", 200*time.Millisecond, "how often the outbox dispatcher looks for due items")
	outboxLease := fs.Duration("outbox-lease", flows.DefaultOutboxLease, "how long a claimed outbox item is its claimer's before another replica may deliver it again (risk dedupes); an item whose claimer died waits this long")
	groupCommit := fs.Bool("group-commit", true, "SQLite: commit concurrent requests' transactions together (one fsync per batch); false commits each alone")
	webhookMaxAge := fs.Duration("webhook-max-age", 24*time.Hour, "how long a webhook delivery is retried (exponential backoff)")
	webhookPrivate := fs.Bool("webhook-allow-private-addresses", false, "deliver webhooks to loopback, private and link-local addresses too (development and tests only)")
	webhookBackoff := fs.Duration("webhook-initial-backoff", 30*time.Second, "wait after a webhook delivery's first failure; doubles up to --max-backoff")
	retention := fs.Duration("idempotency-retention", idempotency.DefaultRetention, "how long idempotency keys are kept")
	maxBackoff := fs.Duration("max-backoff", time.Hour, "longest wait between retries: the janitor's lookups of open operations, the outbox's calls to risk and webhook deliveries back off exponentially up to it (at least 1s)")
	dbTimeout := fs.Duration("database-timeout", store.DefaultTxTimeout, "longest a write transaction (its commit included) or a read may take: a database that hangs then fails the requests waiting on it with Unavailable (retry with the same key) instead of holding them (at least 1s)")
	captureWindow := fs.Duration("capture-window", flows.DefaultCaptureWindow, "how long a manual-capture authorization waits for its capture before the janitor voids it and cancels the payment (reason expired)")

	os.Exit(app.Main(func(ctx context.Context, env *server.Env) (server.Service, error) {
		if *captureWindow <= 0 {
			return server.Service{}, fmt.Errorf("--capture-window must be positive, got %s", *captureWindow)
		}
		if *dbTimeout < time.Second {
			return server.Service{}, fmt.Errorf("--database-timeout must be at least 1s (a loaded batch takes tens of milliseconds), got %s", *dbTimeout)
		}
		if *maxBackoff < time.Second {
			return server.Service{}, fmt.Errorf("--max-backoff must be at least 1s (the first retry waits 1s), got %s", *maxBackoff)
		}
		if *settleAfter != 0 && 3**settleAfter < 4**procTimeout {
			// An authorization call ends a grace (a quarter of --settle-after) before the janitor may
			// look it up, so a shorter --settle-after would silently cut every call short.
			return server.Service{}, fmt.Errorf("--settle-after (%s) must be at least 4/3 of --processor-timeout (%s): the janitor must not look up a call that may still be running",
				*settleAfter, *procTimeout)
		}
		url := *dbURL
		if url == "" {
			if err := os.MkdirAll(*dataDir, 0o755); err != nil {
				return server.Service{}, err
			}
			url = filepath.Join(*dataDir, "payment.db")
		}
		st, err := store.OpenWith(ctx, url, store.Options{NoGroupCommit: !*groupCommit, TxTimeout: *dbTimeout})
		if err != nil {
			return server.Service{}, fmt.Errorf("open store: %w", err)
		}
		var closers []func() error
		closeAll := func() {
			for _, c := range closers {
				_ = c()
			}
			st.Close()
		}
		riskCreds, err := keyFile(*riskKeyFile, env, "risk")
		if err != nil {
			closeAll()
			return server.Service{}, err
		}
		riskConn, err := env.Dial(*riskAddr, client.Options{Credentials: riskCreds, ServerName: "risk",
			// Credit and Debit are idempotent by ref: a retry is harmless.
			Idempotent: []string{riskv1.RiskService_Credit_FullMethodName, riskv1.RiskService_Debit_FullMethodName}})
		if err != nil {
			closeAll()
			return server.Service{}, fmt.Errorf("dial risk: %w", err)
		}
		closers = append(closers, riskConn.Close)

		var procs []processor.Processor
		for name := range strings.SplitSeq(*procList, ",") {
			switch name = strings.TrimSpace(name); name {
			case "acquirer":
				creds, err := keyFile(*acquirerKeyFile, env, "the acquirer")
				if err != nil {
					closeAll()
					return server.Service{}, err
				}
				o := client.Options{Credentials: creds, ServerName: "acquirer", Resolver: env.Resolver}
				if o.TLS == nil {
					o.TLS = env.TLS
				}
				c, err := acquirerproc.Dial(*acquirerAddr, o, acquirerproc.Config{CallTimeout: *procTimeout})
				if err != nil {
					closeAll()
					return server.Service{}, err
				}
				closers = append(closers, c.Close)
				procs = append(procs, c)
			case "stripe":
				key, err := os.ReadFile(*stripeKeyFile)
				if err != nil {
					closeAll()
					return server.Service{}, fmt.Errorf("--stripe-key-file: %w", err)
				}
				first, _, _ := strings.Cut(string(key), "\n")
				sp, err := stripeproc.New(stripeproc.Options{Key: strings.TrimSpace(first), URL: *stripeURL, Timeout: *procTimeout, Logger: env.Logger,
					// The flows key a void as "<attempt id>:void" (domain.Attempt.OpKey).
					AuthorizeKeyOf: func(_ processor.Operation, key string) (string, bool) { return strings.CutSuffix(key, ":void") }})
				if err != nil {
					closeAll()
					return server.Service{}, err
				}
				procs = append(procs, sp)
			case "instant":
				procs = append(procs, instant.New("instant"))
			default:
				closeAll()
				return server.Service{}, fmt.Errorf("--processors: unknown processor %q (acquirer, stripe, instant)", name)
			}
		}
		if len(procs) == 0 {
			closeAll()
			return server.Service{}, fmt.Errorf("--processors: none given")
		}
		if *breakers {
			set := breaker.NewSet(breaker.Config{OnChange: func(name string, from, to breaker.State) {
				env.Logger.Warn("processor circuit", "processor", name, "from", from.String(), "to", to.String())
			}})
			for i, p := range procs {
				procs[i] = guarded{p, set}
			}
		}

		var router flows.Router = flows.Static(procs)
		if *routingRules != "" {
			rules, err := routing.ParseRules(*routingRules)
			if err == nil {
				var r *routing.Router
				if r, err = routing.New(rules, procs, nil, env.Logger); err == nil {
					router = routed{r}
				}
			}
			if err != nil {
				closeAll()
				return server.Service{}, fmt.Errorf("--routing: %w", err)
			}
		}
		var checker flows.Fraud
		if *fraudModel != "" {
			failOpen, err := fraud.ParseFailOpen(*fraudFailOpen)
			if err != nil {
				closeAll()
				return server.Service{}, fmt.Errorf("--fraud-fail-open: %w", err)
			}
			creds, err := keyFile(*inferenceKeyFile, env, "inference")
			if err != nil {
				closeAll()
				return server.Service{}, err
			}
			conn, err := env.Dial(*inferenceAddr, client.Options{Credentials: creds, ServerName: "inference"})
			if err != nil {
				closeAll()
				return server.Service{}, fmt.Errorf("dial inference: %w", err)
			}
			closers = append(closers, conn.Close)
			checker = fraudCheck{fraud.New(inferencepb.NewGRPCInferenceServiceClient(conn), fraud.Config{Model: *fraudModel,
				Threshold: *fraudThreshold, Timeout: *fraudTimeout, FailOpenMax: failOpen}, env.Logger)}
		}

		svc := flows.New(flows.Config{Store: st, Router: router, Processors: procs, Fraud: checker, Risk: riskClient{riskv1.NewRiskServiceClient(riskConn)},
			Logger: env.Logger, ProcessorTimeout: *procTimeout, RiskTimeout: *riskTimeout, SettleAfter: *settleAfter, Retention: *retention,
			CaptureWindow: *captureWindow, MaxBackoff: *maxBackoff, OutboxLease: *outboxLease})

		// The janitor and the outbox dispatcher are owned here: started now, stopped by Close (they
		// block only on the database, the processors and risk, each call with its deadline).
		bg, stopBG := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { svc.RunJanitor(bg, *janitorEvery) })
		wg.Go(func() { svc.RunOutbox(bg, *outboxEvery) })
		hooks := webhook.NewDispatcher(st.Webhooks(), webhook.Config{MaxAge: *webhookMaxAge, InitialBackoff: *webhookBackoff, MaxBackoff: *maxBackoff,
			AllowPrivateAddresses: *webhookPrivate, Log: env.Logger})
		wg.Go(func() { _ = hooks.Run(bg) })

		api := grpcapi.New(svc)
		api.AllowPrivateWebhooks = *webhookPrivate
		return server.Service{
			Register: func(s grpc.ServiceRegistrar) { paymentv1.RegisterPaymentServiceServer(s, api) },
			Policy:   grpcapi.Policy,
			Meta:     map[string]string{"store": st.Dialect().String(), "processors": *procList},
			Close: func(context.Context) error {
				stopBG()
				wg.Wait()
				closeAll()
				return nil
			},
		}, nil
	}))
}

// keyFile is payment's credential for a dependency: its own service identity, read from a file that
// is re-read when it changes.
func keyFile(path string, env *server.Env, what string) (credentials.PerRPCCredentials, error) {
	if path == "" {
		env.Logger.Warn("no API key for " + what + ": its calls will be refused")
		return nil, nil
	}
	f, err := auth.OpenKeyFile(path, time.Second, env.Logger)
	if err != nil {
		return nil, fmt.Errorf("key file for %s: %w", what, err)
	}
	return f, nil
}

// riskClient adapts risk's gRPC API to flows.Risk: errors become domain kinds (a refusal stays
// FailedPrecondition/NotFound/InvalidArgument; no answer is Unavailable).
type riskClient struct{ c riskv1.RiskServiceClient }

func (r riskClient) Credit(ctx context.Context, account, asset, amount, ref string) error {
	_, err := r.c.Credit(ctx, &riskv1.CreditRequest{AccountId: account, AssetId: asset, Amount: amount, Ref: ref})
	return server.FromStatus(err, "risk Credit")
}

func (r riskClient) Debit(ctx context.Context, account, asset, amount, ref string) error {
	_, err := r.c.Debit(ctx, &riskv1.DebitRequest{AccountId: account, AssetId: asset, Amount: amount, Ref: ref})
	return server.FromStatus(err, "risk Debit")
}

// routed adapts the rule-based router to flows.Router.
type routed struct{ r *routing.Router }

func (r routed) Route(method domain.Method, m domain.Money) ([]processor.Processor, error) {
	names, err := r.r.Route(string(method), m.Currency, m.Amount)
	if err != nil {
		return nil, err
	}
	out := make([]processor.Processor, 0, len(names))
	for _, n := range names {
		if p, ok := r.r.Processor(n); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// fraudCheck adapts the inference fraud checker to flows.Fraud.
type fraudCheck struct{ c *fraud.Checker }

func (f fraudCheck) Check(ctx context.Context, feat pkgfraud.Features, m domain.Money) (flows.FraudVerdict, error) {
	v, err := f.c.Check(ctx, feat, m)
	return flows.FraudVerdict{Score: v.Score, Decline: v.Decline}, err
}
