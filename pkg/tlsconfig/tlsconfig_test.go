package tlsconfig_test

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/bourse-dev/bourse/pkg/tlsconfig"
)

// pki is a development PKI in a temporary directory.
func pki(t testing.TB, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := tlsconfig.WriteDevPKI(dir, names...); err != nil {
		t.Fatal(err)
	}
	return dir
}

func load(t testing.TB, f tlsconfig.Files) *tlsconfig.Source {
	t.Helper()
	s, err := tlsconfig.Load(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// server serves grpc.health.v1 on loopback with creds and counts what reaches it past the handshake.
type server struct {
	addr  string
	calls atomic.Int64 // RPCs that reached a handler
	keys  atomic.Int64 // of them, calls carrying an authorization header
}

func serve(t testing.TB, creds credentials.TransportCredentials) *server {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{addr: lis.Addr().String()}
	g := grpc.NewServer(grpc.Creds(creds), grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		s.calls.Add(1)
		if md, _ := metadata.FromIncomingContext(ctx); len(md.Get("authorization")) > 0 {
			s.keys.Add(1)
		}
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(g, health.NewServer())
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	return s
}

type bearer string

func (k bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(k)}, nil
}
func (bearer) RequireTransportSecurity() bool { return false }

// check calls Health/Check on addr with creds, carrying an API key.
func check(t testing.TB, addr string, creds credentials.TransportCredentials) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds), grpc.WithPerRPCCredentials(bearer("secret")))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

func TestMutualTLS(t *testing.T) {
	dir := pki(t, "risk", "matching", "inference")
	other := pki(t, "matching") // another CA
	risk := load(t, tlsconfig.FilesIn(dir, "risk"))
	matching := load(t, tlsconfig.FilesIn(dir, "matching"))
	strangerFiles := tlsconfig.FilesIn(other, "matching")
	stranger := load(t, strangerFiles)

	real := serve(t, risk.ServerCredentials())
	if err := check(t, real.addr, matching.ClientCredentials("risk")); err != nil {
		t.Fatalf("matching → risk with certificates from one CA: %v", err)
	}
	// An empty name verifies the dialled host: the development certificates carry 127.0.0.1.
	if err := check(t, real.addr, matching.ClientCredentials("")); err != nil {
		t.Fatalf("matching → 127.0.0.1 (risk's certificate names it): %v", err)
	}
	if real.calls.Load() != 2 || real.keys.Load() != 2 {
		t.Fatalf("real server saw %d calls, %d with a key; want 2, 2", real.calls.Load(), real.keys.Load())
	}

	t.Run("server refuses a client without a certificate", func(t *testing.T) {
		before := real.calls.Load()
		pool := risk.ClientConfig("risk").RootCAs
		err := check(t, real.addr, credentials.NewTLS(&tls.Config{ServerName: "risk", RootCAs: pool, MinVersion: tls.VersionTLS13}))
		wantUnavailable(t, err)
		if real.calls.Load() != before {
			t.Fatal("a call without a client certificate reached the handler")
		}
	})
	t.Run("server refuses a client certificate from another CA", func(t *testing.T) {
		before := real.calls.Load()
		// The stranger trusts our CA (so only the server's check can fail) but its own cert is foreign.
		mixed := load(t, tlsconfig.Files{Cert: strangerFiles.Cert, Key: strangerFiles.Key, CA: filepath.Join(dir, "ca.crt")})
		wantUnavailable(t, check(t, real.addr, mixed.ClientCredentials("risk")))
		if real.calls.Load() != before {
			t.Fatal("a call with a foreign client certificate reached the handler")
		}
	})
	t.Run("server refuses a plaintext client", func(t *testing.T) {
		before := real.calls.Load()
		wantUnavailable(t, check(t, real.addr, insecure.NewCredentials()))
		if real.calls.Load() != before {
			t.Fatal("a plaintext call reached the handler")
		}
	})

	// Impostors: each would accept the call if the client sent it; none may see one.
	impostors := map[string]credentials.TransportCredentials{
		"our CA, certificate for another service": load(t, tlsconfig.FilesIn(dir, "inference")).ServerCredentials(),
		"certificate from another CA":             stranger.ServerCredentials(),
		"self-signed certificate naming risk":     selfSigned(t, "risk"),
	}
	for name, creds := range impostors {
		t.Run("client refuses impostor: "+name, func(t *testing.T) {
			rogue := serve(t, creds)
			wantUnavailable(t, check(t, rogue.addr, matching.ClientCredentials("risk")))
			if rogue.calls.Load() != 0 || rogue.keys.Load() != 0 {
				t.Fatalf("impostor saw %d calls, %d with a key", rogue.calls.Load(), rogue.keys.Load())
			}
		})
	}
	t.Run("client refuses a plaintext impostor", func(t *testing.T) {
		rogue := serve(t, insecure.NewCredentials())
		wantUnavailable(t, check(t, rogue.addr, matching.ClientCredentials("risk")))
		if rogue.calls.Load() != 0 {
			t.Fatalf("plaintext impostor saw %d calls", rogue.calls.Load())
		}
	})
}

// selfSigned are server credentials with a self-signed certificate for name that accept any client.
func selfSigned(t testing.TB, name string) credentials.TransportCredentials {
	t.Helper()
	certPEM, keyPEM, err := tlsconfig.SelfSigned(name)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequestClientCert})
}

func wantUnavailable(t testing.TB, err error) {
	t.Helper()
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("got %v, want Unavailable (handshake refused)", err)
	}
}

func TestReloadWithoutRestart(t *testing.T) {
	dir := pki(t, "risk", "matching")
	files := tlsconfig.FilesIn(dir, "risk")
	src := load(t, files)
	srv := serve(t, src.ServerCredentials())
	client := load(t, tlsconfig.FilesIn(dir, "matching"))
	if err := check(t, srv.addr, client.ClientCredentials("risk")); err != nil {
		t.Fatal(err)
	}

	// Rotate risk's files to a certificate for "ledger" from the same CA: the next handshake must
	// present it, so a client still expecting "risk" is refused and one expecting "ledger" is not.
	ca, err := tlsconfig.LoadCA(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue("ledger")
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, files, certPEM, keyPEM)
	wantUnavailable(t, check(t, srv.addr, client.ClientCredentials("risk")))
	if err := check(t, srv.addr, client.ClientCredentials("ledger")); err != nil {
		t.Fatalf("after rotation the server does not present the new certificate: %v", err)
	}

	// The client side reloads too: once its certificate comes from another CA, the server, which
	// still trusts only ours, refuses its next connection.
	other, err := tlsconfig.NewCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	foreignCert, foreignKey, err := other.Issue("matching")
	if err != nil {
		t.Fatal(err)
	}
	clientFiles := tlsconfig.FilesIn(dir, "matching")
	goodCert, goodKey := readFile(t, clientFiles.Cert), readFile(t, clientFiles.Key)
	writeFiles(t, clientFiles, foreignCert, foreignKey)
	wantUnavailable(t, check(t, srv.addr, client.ClientCredentials("ledger")))
	writeFiles(t, clientFiles, goodCert, goodKey)
	if err := check(t, srv.addr, client.ClientCredentials("ledger")); err != nil {
		t.Fatalf("client certificate restored: %v", err)
	}

	// A half-written rotation (a key that does not match) keeps the last good pair.
	if err := os.WriteFile(files.Key, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := check(t, srv.addr, client.ClientCredentials("ledger")); err != nil {
		t.Fatalf("a broken key file replaced the working certificate: %v", err)
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFiles(t testing.TB, f tlsconfig.Files, certPEM, keyPEM []byte) {
	t.Helper()
	if err := os.WriteFile(f.Key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.Cert, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFilesValidate(t *testing.T) {
	if err := (tlsconfig.Files{}).Validate(); err != nil {
		t.Fatalf("no files: %v", err)
	}
	if err := (tlsconfig.Files{Cert: "a", Key: "b"}).Validate(); err == nil {
		t.Fatal("a certificate without a CA was accepted")
	}
	if _, err := tlsconfig.Load(tlsconfig.Files{Cert: "/nonexistent.crt", Key: "/nonexistent.key", CA: "/nonexistent.ca"}, nil); err == nil {
		t.Fatal("missing files were accepted")
	}
}

func TestWriteDevPKIKeepsTheCA(t *testing.T) {
	dir := pki(t, "risk")
	first, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tlsconfig.WriteDevPKI(dir, "risk", "matching"); err != nil {
		t.Fatal(err)
	}
	second, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if string(first) != string(second) {
		t.Fatal("a second run replaced the CA: certificates handed out earlier stop working")
	}
	leaf := load(t, tlsconfig.FilesIn(dir, "matching")).Certificate()
	if err := leaf.VerifyHostname("matching"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "matching.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
}
