package server

import (
	"flag"
	"time"

	"github.com/bourse-dev/bourse/pkg/consul"
)

// Options are the flags every service shares. Each is also read from BOURSE_<SERVICE>_<FLAG> and
// BOURSE_<FLAG> (see pkg/config).
type Options struct {
	GRPCAddr        string
	AdvertiseHost   string
	MetricsAddr     string
	ConsulAddr      string
	Register        bool
	InstanceID      string
	Tags            string
	CheckInterval   time.Duration
	CheckTimeout    time.Duration
	DeregisterAfter time.Duration
	DrainTimeout    time.Duration
	DeregisterGrace time.Duration
	LogLevel        string
	LogFormat       string
	APIKeys         string
	APIKeysFile     string
	APIKeysReload   time.Duration
	RateAccount     string
	RateService     string
	RateAdmin       string
	MaxStreams      uint
	Pprof           string
	MaxMessageBytes int
	ReadyFile       string
	TLSCert         string
	TLSKey          string
	TLSCA           string
}

// Defaults a service passes to NewApp.
type Defaults struct {
	GRPCAddr    string // e.g. "127.0.0.1:7001"
	MetricsAddr string // e.g. "127.0.0.1:9001"; empty picks a free port
}

func (o *Options) bind(fs *flag.FlagSet, d Defaults) {
	fs.StringVar(&o.GRPCAddr, "grpc-addr", d.GRPCAddr, "gRPC listen address (host:port; port 0 picks a free one)")
	fs.StringVar(&o.AdvertiseHost, "advertise-host", "", "host registered in Consul (default: the listen host, or 127.0.0.1 when it is unspecified)")
	fs.StringVar(&o.MetricsAddr, "metrics-addr", orDefault(d.MetricsAddr, "127.0.0.1:0"), "Prometheus /metrics listen address")
	fs.StringVar(&o.ConsulAddr, "consul-addr", consul.DefaultAddr, "Consul agent HTTP address")
	fs.BoolVar(&o.Register, "register", true, "register this instance in Consul")
	fs.StringVar(&o.InstanceID, "instance-id", "", "Consul service id (default <service>-<host>-<port>)")
	fs.StringVar(&o.Tags, "tags", "", "comma-separated Consul tags")
	fs.DurationVar(&o.CheckInterval, "check-interval", 2*time.Second, "Consul gRPC health check interval")
	fs.DurationVar(&o.CheckTimeout, "check-timeout", time.Second, "Consul gRPC health check timeout")
	fs.DurationVar(&o.DeregisterAfter, "deregister-critical-after", time.Minute, "Consul removes an instance critical this long (minimum 1m)")
	fs.DurationVar(&o.DrainTimeout, "drain-timeout", 10*time.Second, "on SIGTERM, how long in-flight calls may take before they are cut")
	fs.DurationVar(&o.DeregisterGrace, "deregister-grace", 250*time.Millisecond, "on SIGTERM, pause after deregistering so resolvers drop this instance before the listener closes")
	fs.StringVar(&o.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.LogFormat, "log-format", "text", "text or json")
	fs.StringVar(&o.APIKeys, "api-keys", "", "API keys: key=role:subject,... with role admin, service or account (a key may be sha256:<hex>)")
	fs.StringVar(&o.APIKeysFile, "api-keys-file", "", "file of API keys, one key=role:subject per line ('#' comments); reloaded on SIGHUP and when it changes")
	fs.DurationVar(&o.APIKeysReload, "api-keys-reload", 2*time.Second, "how often --api-keys-file is checked for changes (0: only on SIGHUP)")
	fs.StringVar(&o.RateAccount, "rate-limit-account", "200/s:400", "calls and stream messages per account identity: <n>/s[:burst] or off (a call beyond it is ResourceExhausted; a stream slows down to it)")
	fs.StringVar(&o.RateService, "rate-limit-service", "off", "calls per service identity: <n>/s[:burst] or off")
	fs.StringVar(&o.RateAdmin, "rate-limit-admin", "off", "calls per admin identity: <n>/s[:burst] or off")
	fs.UintVar(&o.MaxStreams, "max-concurrent-streams", 1024, "concurrent calls (HTTP/2 streams) one connection may have open")
	fs.StringVar(&o.Pprof, "pprof", "loopback", "Go profiles on the metrics port: loopback (only when --metrics-addr is a loopback address), on, or off")
	fs.IntVar(&o.MaxMessageBytes, "max-message-bytes", 16<<20, "largest gRPC message received or sent")
	fs.StringVar(&o.TLSCert, "tls-cert", "", "mutual TLS: this service's certificate (PEM), served and presented to the services it calls; with --tls-key and --tls-ca")
	fs.StringVar(&o.TLSKey, "tls-key", "", "mutual TLS: the private key of --tls-cert (PEM)")
	fs.StringVar(&o.TLSCA, "tls-ca", "", "mutual TLS: the CA (PEM) every client and server certificate must chain to")
	fs.StringVar(&o.ReadyFile, "ready-file", "", "write {\"grpc_addr\",\"metrics_addr\"} here once serving (for scripts and tests)")
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}
