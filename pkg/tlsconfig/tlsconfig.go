// Package tlsconfig is mutual TLS between bourse services. Every service holds one certificate that
// names it (its Consul service name as a DNS SAN) and trusts one CA. As a server it accepts only
// clients presenting a certificate from that CA; as a client it presents the same certificate and
// accepts only a server whose certificate chains to the CA and names the service it dialled. So an
// impostor registered in Consul under another service's name fails the handshake before any call,
// and before any API key in the call's metadata, reaches it.
//
// Certificates and the CA are re-read when their files change, at the next handshake, so they can
// be rotated without a restart; connections already open keep the certificate they shook hands with.
package tlsconfig

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"
)

// MinVersion is the lowest TLS version either side accepts. Every peer is one of ours (or Consul's
// agent, built with the same Go), so there is no older client to keep.
const MinVersion = tls.VersionTLS13

// Files name the PEM files of one service's identity.
type Files struct {
	Cert string // the service's certificate chain
	Key  string // its private key
	CA   string // the CA bundle peers must chain to
}

// Enabled reports whether any file is set.
func (f Files) Enabled() bool { return f != Files{} }

// Validate checks that the files are all set or all empty.
func (f Files) Validate() error {
	if !f.Enabled() {
		return nil
	}
	for _, v := range []struct{ flag, path string }{{"tls-cert", f.Cert}, {"tls-key", f.Key}, {"tls-ca", f.CA}} {
		if v.path == "" {
			return fmt.Errorf("--%s: required when any of --tls-cert, --tls-key, --tls-ca is set", v.flag)
		}
	}
	return nil
}

// Source holds the current certificate and CA pool read from Files, and re-reads them when a file
// changes. It is safe for concurrent use; every handshake asks it for the current material.
type Source struct {
	files Files
	log   *slog.Logger

	mu     sync.Mutex
	stamps [3]stamp
	cert   *tls.Certificate
	pool   *x509.CertPool
}

type stamp struct {
	mod  time.Time
	size int64
}

// Load reads files, failing if any is missing or invalid.
func Load(files Files, log *slog.Logger) (*Source, error) {
	if err := files.Validate(); err != nil {
		return nil, err
	}
	if !files.Enabled() {
		return nil, errors.New("tlsconfig: no files")
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Source{files: files, log: log}
	stamps, err := s.stat()
	if err != nil {
		return nil, err
	}
	if err := s.read(stamps); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Source) stat() ([3]stamp, error) {
	var out [3]stamp
	for i, p := range []string{s.files.Cert, s.files.Key, s.files.CA} {
		fi, err := os.Stat(p)
		if err != nil {
			return out, err
		}
		out[i] = stamp{mod: fi.ModTime(), size: fi.Size()}
	}
	return out, nil
}

// read parses the files and, only if all of them are valid, makes them current.
func (s *Source) read(stamps [3]stamp) error {
	cert, err := tls.LoadX509KeyPair(s.files.Cert, s.files.Key)
	if err != nil {
		return fmt.Errorf("tls certificate %s / key %s: %w", s.files.Cert, s.files.Key, err)
	}
	caPEM, err := os.ReadFile(s.files.CA)
	if err != nil {
		return fmt.Errorf("tls CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("tls CA %s: no PEM certificate", s.files.CA)
	}
	s.cert, s.pool, s.stamps = &cert, pool, stamps
	return nil
}

// current returns the material to shake hands with, re-reading the files first if one has changed.
// A change that does not parse (a rotation caught half-written) keeps the previous material and is
// retried at the next handshake.
func (s *Source) current() (*tls.Certificate, *x509.CertPool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	stamps, err := s.stat()
	if err == nil && stamps != s.stamps {
		if err = s.read(stamps); err == nil {
			s.log.Info("tls: reloaded certificate and CA", "cert", s.files.Cert, "ca", s.files.CA)
		}
	}
	if err != nil {
		s.log.Warn("tls: keeping the previous certificate and CA", "err", err)
	}
	return s.cert, s.pool
}

// Certificate is the current certificate's leaf, for logs and tests.
func (s *Source) Certificate() *x509.Certificate {
	cert, _ := s.current()
	return cert.Leaf
}

// ServerConfig is the TLS configuration of a server: it presents the current certificate and
// requires a client certificate chained to the current CA.
func (s *Source) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: MinVersion,
		NextProtos: []string{"h2"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, pool := s.current()
			return &tls.Config{
				MinVersion:   MinVersion,
				NextProtos:   []string{"h2"},
				Certificates: []tls.Certificate{*cert},
				ClientCAs:    pool,
				ClientAuth:   tls.RequireAndVerifyClientCert,
			}, nil
		},
	}
}

// ClientConfig is the TLS configuration of a client of serverName: it presents the current
// certificate and accepts only a server certificate chained to the current CA that names serverName.
func (s *Source) ClientConfig(serverName string) *tls.Config {
	cert, pool := s.current()
	return &tls.Config{
		MinVersion:   MinVersion,
		ServerName:   serverName,
		RootCAs:      pool,
		Certificates: []tls.Certificate{*cert},
	}
}

// ServerCredentials are gRPC server credentials over ServerConfig.
func (s *Source) ServerCredentials() credentials.TransportCredentials {
	return credentials.NewTLS(s.ServerConfig())
}

// ClientCredentials are gRPC client credentials verifying that the server is serverName. An empty
// serverName verifies the host of the dialled address (an IP must then be in the certificate).
func (s *Source) ClientCredentials(serverName string) credentials.TransportCredentials {
	return &clientCreds{src: s, serverName: serverName}
}

// clientCreds builds the TLS configuration at each handshake, so a rotated certificate or CA is
// used by the next connection without redialling the ClientConn.
type clientCreds struct {
	src        *Source
	serverName string
}

func (c *clientCreds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return credentials.NewTLS(c.src.ClientConfig(c.serverName)).ClientHandshake(ctx, authority, raw)
}

func (c *clientCreds) ServerHandshake(net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("tlsconfig: client credentials used by a server")
}

func (c *clientCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls", SecurityVersion: "1.3", ServerName: c.serverName}
}

func (c *clientCreds) Clone() credentials.TransportCredentials {
	return &clientCreds{src: c.src, serverName: c.serverName}
}

// OverrideServerName is part of the gRPC interface (deprecated there); it sets the verified name.
func (c *clientCreds) OverrideServerName(name string) error {
	c.serverName = name
	return nil
}

// ConsulAgentHCL is Consul agent configuration under which its gRPC health checks present f's
// certificate and verify the instance's against f's CA, as a service serving mutual TLS requires.
// (Only checks use it: with verify_outgoing unset the agent's own RPC stays as it was.)
func ConsulAgentHCL(f Files) string {
	return fmt.Sprintf(`tls { internal_rpc { ca_file = %q, cert_file = %q, key_file = %q } } enable_agent_tls_for_checks = true`, f.CA, f.Cert, f.Key)
}
