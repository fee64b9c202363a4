// Package server is the runtime every bourse service starts with: configuration, logging, tracing,
// a gRPC server with health, reflection, auth, metrics and panic recovery, Consul registration, and a
// graceful drain on SIGTERM/SIGINT.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/bourse-dev/bourse/pkg/auth"
	"github.com/bourse-dev/bourse/pkg/client"
	"github.com/bourse-dev/bourse/pkg/config"
	"github.com/bourse-dev/bourse/pkg/consul"
	"github.com/bourse-dev/bourse/pkg/resolver"
	"github.com/bourse-dev/bourse/pkg/telemetry"
	"github.com/bourse-dev/bourse/pkg/tlsconfig"
)

// Service is what a service's main hands to the runtime.
type Service struct {
	// Register adds the service's gRPC implementations to the server.
	Register func(grpc.ServiceRegistrar)
	// Policy says which methods are public or admin-only; others need any known API key.
	Policy auth.Policy
	// Meta is added to the Consul registration.
	Meta map[string]string
	// Close runs after the server has stopped (flush, close databases).
	Close func(context.Context) error
}

// Env is what the runtime gives a service while it is built.
type Env struct {
	Name     string
	Options  *Options
	Logger   *slog.Logger
	Consul   *api.Client
	Resolver *resolver.Builder
	// Draining is closed when shutdown begins: long-lived streams should end so clients move on.
	Draining <-chan struct{}
	// Metrics is the registry served on /metrics.
	Metrics prometheus.Registerer
	// TLS is the service's mutual TLS identity (--tls-cert/--tls-key/--tls-ca); nil when off.
	TLS *tlsconfig.Source

	fail func(error)
}

// Fail stops the service because it can no longer keep its promises (e.g. its store failed after a
// change was applied in memory): it drains like SIGTERM and the process exits non-zero, so a restart
// rebuilds state from what is durable.
func (e *Env) Fail(err error) {
	e.Logger.Error("fatal: stopping the service", "err", err)
	e.fail(err)
}

// Dial connects to another service ("consul:///risk" or host:port) with the runtime's resolver and,
// when mutual TLS is on, the service's own certificate (the server must prove it is the service dialled).
func (e *Env) Dial(target string, o client.Options) (*grpc.ClientConn, error) {
	o.Resolver = e.Resolver
	if o.TLS == nil {
		o.TLS = e.TLS
	}
	return client.Dial(target, o)
}

// BuildFunc constructs the service once the runtime is ready.
type BuildFunc func(ctx context.Context, env *Env) (Service, error)

// App is a service process in the making: add flags to Flags(), then call Main or Run.
type App struct {
	name  string
	flags *flag.FlagSet
	opts  Options
}

// NewApp creates the app of service name with its default ports.
func NewApp(name string, d Defaults) *App {
	a := &App{name: name, flags: flag.NewFlagSet(name, flag.ContinueOnError)}
	a.opts.bind(a.flags, d)
	return a
}

// Flags is where a service adds its own flags before Main.
func (a *App) Flags() *flag.FlagSet { return a.flags }

// Main runs the app until SIGTERM or SIGINT and returns the process exit code.
func (a *App) Main(build BuildFunc) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := a.Run(ctx, os.Args[1:], build); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "%s: %v\n", a.name, err)
		return 1
	}
	return 0
}

// Run parses args, serves until ctx ends, then drains. It returns when everything has stopped.
func (a *App) Run(parent context.Context, args []string, build BuildFunc) (err error) {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	defer func() {
		if cause := context.Cause(ctx); err == nil && cause != nil && parent.Err() == nil && !errors.Is(cause, context.Canceled) {
			err = cause
		}
	}()
	if err := config.Parse(a.flags, a.name, args); err != nil {
		return err
	}
	o := &a.opts
	logger, err := newLogger(o.LogLevel, o.LogFormat, a.name)
	if err != nil {
		return err
	}
	keys, err := auth.NewKeySource(o.APIKeys, o.APIKeysFile, logger)
	if err != nil {
		return err
	}
	if keys.Keyring().Len() == 0 && o.APIKeysFile == "" {
		logger.Warn("no API keys configured: every non-public RPC will be refused (set --api-keys-file or --api-keys)")
	}
	limits, err := rateLimits(o)
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); keys.Watch(watchCtx, o.APIKeysReload, hup) }()
	defer func() { stopWatch(); <-watchDone }()

	var tlsSource *tlsconfig.Source
	if files := (tlsconfig.Files{Cert: o.TLSCert, Key: o.TLSKey, CA: o.TLSCA}); files.Enabled() {
		if tlsSource, err = tlsconfig.Load(files, logger); err != nil {
			return err
		}
		leaf := tlsSource.Certificate()
		if err := leaf.VerifyHostname(a.name); err != nil {
			// Clients dialling consul:///<name> and the agent's check would refuse every handshake.
			logger.Warn("--tls-cert does not name this service", "err", err)
		}
		logger.Info("mutual TLS on", "cert_names", leaf.DNSNames, "not_after", leaf.NotAfter)
	}

	lis, err := net.Listen("tcp", o.GRPCAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", o.GRPCAddr, err)
	}
	defer lis.Close()
	port := lis.Addr().(*net.TCPAddr).Port
	host := advertiseHost(o)
	instanceID := o.InstanceID
	if instanceID == "" {
		instanceID = fmt.Sprintf("%s-%s-%d", a.name, host, port)
	}
	logger = logger.With("instance", instanceID)

	shutdownTracing, err := telemetry.Setup(ctx, a.name, instanceID)
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer func() {
		flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdownTracing(flushCtx); err != nil {
			logger.Warn("flushing traces", "err", err)
		}
	}()

	consulClient, err := consul.NewClient(o.ConsulAddr)
	if err != nil {
		return fmt.Errorf("consul client: %w", err)
	}
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	draining := make(chan struct{})
	env := &Env{
		Name: a.name, Options: o, Logger: logger, Consul: consulClient,
		Resolver: resolver.NewBuilder(consulClient, logger), Draining: draining, Metrics: registry, TLS: tlsSource,
		fail: func(err error) { cancel(err) },
	}
	svc, err := build(ctx, env)
	if err != nil {
		return err
	}
	defer func() {
		if svc.Close != nil {
			closeCtx, cancel := context.WithTimeout(context.Background(), o.DrainTimeout)
			defer cancel()
			if err := svc.Close(closeCtx); err != nil {
				logger.Error("closing service", "err", err)
			}
		}
	}()

	ic := &interceptors{log: logger, keys: keys, policy: svc.Policy, limits: limits, metrics: newRPCMetrics(registry)}
	serverOpts := []grpc.ServerOption{
		grpc.InTapHandle(ic.tap),
		grpc.MaxConcurrentStreams(uint32(min(o.MaxStreams, 1<<31))),
		grpc.StatsHandler(otelgrpc.NewServerHandler(telemetry.ServerHandlerOptions()...)),
		grpc.ChainUnaryInterceptor(ic.unary),
		grpc.ChainStreamInterceptor(ic.stream),
		grpc.MaxRecvMsgSize(o.MaxMessageBytes),
		grpc.MaxSendMsgSize(o.MaxMessageBytes),
	}
	if tlsSource != nil {
		serverOpts = append(serverOpts, grpc.Creds(tlsSource.ServerCredentials()))
	}
	grpcServer := grpc.NewServer(serverOpts...)
	healthServer := health.NewServer()
	healthpb.RegisterHealthServer(grpcServer, healthServer)
	reflection.Register(grpcServer)
	svc.Register(grpcServer)
	if missing := unclassified(svc.Policy, grpcServer.GetServiceInfo()); len(missing) > 0 {
		// Default deny refuses them anyway; starting would hide a method nobody can call.
		return fmt.Errorf("methods missing from the service's access policy: %v", missing)
	}
	ic.metrics.setKnown(grpcServer.GetServiceInfo())
	for name := range grpcServer.GetServiceInfo() {
		healthServer.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	healthServer.SetServingStatus(a.name, healthpb.HealthCheckResponse_SERVING)

	metricsServer, metricsAddr, err := serveMetrics(o.MetricsAddr, o.Pprof, registry)
	if err != nil {
		return err
	}
	defer metricsServer.Close()

	serveErr := make(chan error, 1)
	go func() { serveErr <- grpcServer.Serve(lis) }()
	logger.Info("serving", "grpc", lis.Addr().String(), "metrics", metricsAddr)

	registered := false
	if o.Register {
		inst := consul.Instance{
			ID: instanceID, Name: a.name, Address: host, Port: port, Tags: config.List(o.Tags), Meta: withVersion(svc.Meta),
			Check: consul.Check{Kind: consul.CheckGRPC, Interval: o.CheckInterval, Timeout: o.CheckTimeout, DeregisterAfter: o.DeregisterAfter},
		}
		if tlsSource != nil {
			// The agent checks the port clients use, through the same handshake: an instance whose
			// certificate does not name it, or has expired, never passes.
			inst.Check.TLSServerName = a.name
		}
		if err := consul.Register(ctx, consulClient, inst); err != nil {
			grpcServer.Stop()
			return fmt.Errorf("register in consul at %s: %w", o.ConsulAddr, err)
		}
		registered = true
		logger.Info("registered in consul", "consul", o.ConsulAddr, "check_interval", o.CheckInterval)
	}
	if o.ReadyFile != "" {
		if err := writeReadyFile(o.ReadyFile, lis.Addr().String(), metricsAddr); err != nil {
			return err
		}
	}

	select {
	case <-ctx.Done():
		logger.Info("shutting down: draining")
	case err := <-serveErr:
		logger.Error("gRPC server stopped", "err", err)
	}

	// Drain: fail health checks, leave the catalog, give resolvers a moment, then let in-flight calls
	// finish up to the deadline.
	healthServer.Shutdown()
	close(draining)
	if registered {
		deregCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := consul.Deregister(deregCtx, consulClient, instanceID); err != nil {
			logger.Warn("deregister from consul", "err", err)
		} else {
			logger.Info("deregistered from consul")
		}
		cancel()
		time.Sleep(o.DeregisterGrace)
	}
	stopped := make(chan struct{})
	go func() { grpcServer.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
		logger.Info("drained")
	case <-time.After(o.DrainTimeout):
		logger.Warn("drain deadline passed; cutting remaining calls", "drain_timeout", o.DrainTimeout)
		grpcServer.Stop()
		<-stopped
	}
	return nil
}

func advertiseHost(o *Options) string {
	if o.AdvertiseHost != "" {
		return o.AdvertiseHost
	}
	host, _, err := net.SplitHostPort(o.GRPCAddr)
	if err != nil || host == "" || host == "0.0.0.0" || host == "::" {
		return "127.0.0.1"
	}
	return host
}

func serveMetrics(addr, profiles string, reg *prometheus.Registry) (*http.Server, string, error) {
	serveProfiles, err := profilesOn(profiles, addr)
	if err != nil {
		return nil, "", err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("metrics listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if serveProfiles {
		// Profiles on the same operator-only port: the first thing to look at when a service is slow.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	return srv, lis.Addr().String(), nil
}

func writeReadyFile(path, grpcAddr, metricsAddr string) error {
	b, _ := json.Marshal(map[string]string{"grpc_addr": grpcAddr, "metrics_addr": metricsAddr, "pid": strconv.Itoa(os.Getpid())})
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func newLogger(level, format, service string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	switch format {
	case "text":
		h = slog.NewTextHandler(os.Stderr, opts)
	case "json":
		h = slog.NewJSONHandler(os.Stderr, opts)
	default:
		return nil, fmt.Errorf("--log-format: %q is neither text nor json", format)
	}
	return slog.New(h).With("service", service), nil
}

// rateLimits builds the per-identity limiter from the --rate-limit-* flags (nil when all are off).
func rateLimits(o *Options) (*rateLimiter, error) {
	rates := map[auth.Role]Rate{}
	for role, spec := range map[auth.Role]string{auth.RoleAccount: o.RateAccount, auth.RoleService: o.RateService, auth.RoleAdmin: o.RateAdmin} {
		r, err := ParseRate(spec)
		if err != nil {
			return nil, fmt.Errorf("--rate-limit-%s: %w", role, err)
		}
		if r.PerSecond > 0 {
			rates[role] = r
		}
	}
	if len(rates) == 0 {
		return nil, nil
	}
	return newRateLimiter(rates, time.Now), nil
}

// unclassified lists registered methods the policy does not name.
func unclassified(p auth.Policy, services map[string]grpc.ServiceInfo) []string {
	var out []string
	for name, info := range services {
		for _, m := range info.Methods {
			if _, ok := p.For("/" + name + "/" + m.Name); !ok {
				out = append(out, "/"+name+"/"+m.Name)
			}
		}
	}
	slices.Sort(out)
	return out
}
