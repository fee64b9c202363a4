// Package client dials bourse services: consul:/// targets through the Consul resolver, round robin
// across instances, OpenTelemetry client spans, and retries on Unavailable for the idempotent methods
// a caller names.
package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/bourse-dev/bourse/pkg/resolver"
	"github.com/bourse-dev/bourse/pkg/telemetry"
	"github.com/bourse-dev/bourse/pkg/tlsconfig"
)

// Options configure Dial.
type Options struct {
	// Resolver resolves consul:/// targets; nil means consul:/// cannot be used.
	Resolver *resolver.Builder
	// Idempotent lists methods ("pkg.Service/Method", or "pkg.Service" for all of a service's methods)
	// that may be retried on Unavailable.
	Idempotent []string
	// MaxAttempts per idempotent call including the first (default 4).
	MaxAttempts int
	// APIKey, when set, is sent as "authorization: Bearer <key>" on every call.
	APIKey string
	// Credentials, when set, supply the key per call instead of APIKey (auth.KeyFile re-reads a
	// rotated key file).
	Credentials credentials.PerRPCCredentials
	// MaxMessageBytes raises the receive limit (default gRPC's 4 MiB).
	MaxMessageBytes int
	// TLS, when set, makes the connection mutual TLS: the source's certificate is presented and the
	// server must chain to its CA and name ServerName. Nil is plaintext.
	TLS *tlsconfig.Source
	// ServerName is the name the server's certificate must carry. Default: the service name of a
	// consul:/// target (whatever instance Consul returns must prove it is that service), or the
	// host of a host:port target.
	ServerName string
}

// Dial returns a client connection to target ("consul:///name" or "host:port").
func Dial(target string, o Options, extra ...grpc.DialOption) (*grpc.ClientConn, error) {
	cfg, err := ServiceConfig(o.Idempotent, o.MaxAttempts)
	if err != nil {
		return nil, err
	}
	creds := insecure.NewCredentials()
	if o.TLS != nil {
		creds = o.TLS.ClientCredentials(serverName(target, o.ServerName))
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(telemetry.ClientHandlerOptions()...)),
		grpc.WithDefaultServiceConfig(cfg),
	}
	if o.Resolver != nil {
		opts = append(opts, grpc.WithResolvers(o.Resolver))
	} else if strings.HasPrefix(target, resolver.Scheme+":") {
		return nil, fmt.Errorf("dial %s: no consul resolver configured", target)
	}
	switch {
	case o.Credentials != nil:
		opts = append(opts, grpc.WithPerRPCCredentials(o.Credentials))
	case o.APIKey != "":
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(o.APIKey)))
	}
	if o.MaxMessageBytes > 0 {
		opts = append(opts, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(o.MaxMessageBytes), grpc.MaxCallSendMsgSize(o.MaxMessageBytes)))
	}
	return grpc.NewClient(target, append(opts, extra...)...)
}

// serverName is the identity a TLS server must prove: the override, else the Consul service name of
// a consul:/// target, else empty, which gRPC fills in with the host of the address.
func serverName(target, override string) string {
	if override != "" {
		return override
	}
	u, err := url.Parse(target)
	if err != nil || u.Scheme != resolver.Scheme {
		return ""
	}
	return strings.TrimPrefix(u.Path, "/")
}

// ServiceConfig builds the default service config: round robin, and a retry policy on Unavailable
// for the idempotent methods.
func ServiceConfig(idempotent []string, maxAttempts int) (string, error) {
	if maxAttempts <= 0 {
		maxAttempts = 4
	}
	type name struct {
		Service string `json:"service"`
		Method  string `json:"method,omitempty"`
	}
	type retryPolicy struct {
		MaxAttempts          int      `json:"maxAttempts"`
		InitialBackoff       string   `json:"initialBackoff"`
		MaxBackoff           string   `json:"maxBackoff"`
		BackoffMultiplier    float64  `json:"backoffMultiplier"`
		RetryableStatusCodes []string `json:"retryableStatusCodes"`
	}
	type methodConfig struct {
		Name        []name       `json:"name"`
		RetryPolicy *retryPolicy `json:"retryPolicy,omitempty"`
	}
	cfg := struct {
		LoadBalancingConfig []map[string]struct{} `json:"loadBalancingConfig"`
		MethodConfig        []methodConfig        `json:"methodConfig,omitempty"`
	}{LoadBalancingConfig: []map[string]struct{}{{"round_robin": {}}}}
	if len(idempotent) > 0 {
		mc := methodConfig{RetryPolicy: &retryPolicy{
			MaxAttempts: maxAttempts, InitialBackoff: "0.02s", MaxBackoff: "0.5s",
			BackoffMultiplier: 2, RetryableStatusCodes: []string{"UNAVAILABLE"},
		}}
		for _, m := range idempotent {
			svc, method, _ := strings.Cut(strings.TrimPrefix(m, "/"), "/")
			if svc == "" {
				return "", fmt.Errorf("idempotent method %q: want pkg.Service or pkg.Service/Method", m)
			}
			mc.Name = append(mc.Name, name{Service: svc, Method: method})
		}
		cfg.MethodConfig = []methodConfig{mc}
	}
	b, err := json.Marshal(cfg)
	return string(b), err
}

// StaticKey is a per-call credential that always sends key.
func StaticKey(key string) credentials.PerRPCCredentials { return bearer(key) }

type bearer string

func (k bearer) GetRequestMetadata(_ context.Context, _ ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(k)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }
