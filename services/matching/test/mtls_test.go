package matching_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/bourse-dev/bourse/pkg/client"
	"github.com/bourse-dev/bourse/pkg/consul"
	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
	"github.com/bourse-dev/bourse/pkg/tlsconfig"
)

// rogue is a gRPC server an attacker registers in Consul as "risk". It would answer anything; it
// counts connections, and every header block and call that gets past the TLS handshake.
type rogue struct {
	name    string
	port    int
	conns   atomic.Int64 // TCP connections accepted: matching did try this instance
	headers atomic.Int64 // header blocks received (any call's metadata, API key included)
	calls   atomic.Int64 // calls that reached a handler
}

func (r *rogue) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (r *rogue) HandleRPC(_ context.Context, s stats.RPCStats) {
	if _, ok := s.(*stats.InHeader); ok {
		r.headers.Add(1)
	}
}
func (r *rogue) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (r *rogue) HandleConn(context.Context, stats.ConnStats)                       {}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func startRogue(t *testing.T, agent *testenv.ConsulAgent, name string, creds credentials.TransportCredentials) *rogue {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &rogue{name: name, port: lis.Addr().(*net.TCPAddr).Port}
	s := grpc.NewServer(grpc.Creds(creds), grpc.StatsHandler(r),
		grpc.UnknownServiceHandler(func(any, grpc.ServerStream) error {
			r.calls.Add(1)
			return nil
		}))
	go func() { _ = s.Serve(countingListener{lis, &r.conns}) }()
	t.Cleanup(s.Stop)
	// No health check: the instance is passing, so the resolver hands it to matching, and only the
	// client's handshake stands between it and the calls.
	if err := consul.Register(context.Background(), agent.Client, consul.Instance{
		ID: fmt.Sprintf("risk-rogue-%d", r.port), Name: "risk", Address: "127.0.0.1", Port: r.port,
		Check: consul.Check{Kind: consul.CheckNone},
	}); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rogue) assertNothingReached(t *testing.T) {
	t.Helper()
	if r.conns.Load() == 0 {
		t.Errorf("rogue %s: matching never connected to it, so the test proves nothing", r.name)
	}
	if h, c := r.headers.Load(), r.calls.Load(); h != 0 || c != 0 {
		t.Errorf("rogue %s received %d header blocks and %d calls", r.name, h, c)
	}
}

func tlsArgs(f tlsconfig.Files) []string {
	return []string{"--tls-cert=" + f.Cert, "--tls-key=" + f.Key, "--tls-ca=" + f.CA}
}

func dialTLS(t *testing.T, src *tlsconfig.Source, addr, serverName, key string) *grpc.ClientConn {
	t.Helper()
	conn, err := client.Dial(addr, client.Options{APIKey: key, TLS: src, ServerName: serverName})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func loadTLS(t *testing.T, f tlsconfig.Files) *tlsconfig.Source {
	t.Helper()
	src, err := tlsconfig.Load(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// TestMutualTLSRogueRiskGetsNoKey runs Consul, risk and matching with mutual TLS, plus impostors
// registered in Consul as "risk": one with a certificate for "inference" from the same CA, one
// self-signed for "risk", one plaintext. Matching trades through the real risk and no impostor
// receives a call or a header (so never matching's admin key); with only impostors left, matching's
// orders fail with Unavailable.
func TestMutualTLSRogueRiskGetsNoKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	if _, err := tlsconfig.WriteDevPKI(dir, "risk", "matching", "inference", "consul", "client"); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other")
	if _, err := tlsconfig.WriteDevPKI(other, "client"); err != nil {
		t.Fatal(err)
	}
	agent := testenv.StartConsul(t, tlsconfig.ConsulAgentHCL(tlsconfig.FilesIn(dir, "consul")))
	cli := loadTLS(t, tlsconfig.FilesIn(dir, "client"))

	riskProc := testenv.StartService(t, testenv.Build(t, riskPkg), nil, append([]string{
		"--consul-addr=" + agent.Addr, "--api-keys=" + apiKeys, "--check-interval=1s", "--data-dir=" + filepath.Join(t.TempDir(), "risk"),
	}, tlsArgs(tlsconfig.FilesIn(dir, "risk"))...)...)
	rc := riskv1.NewRiskServiceClient(dialTLS(t, cli, riskProc.GRPCAddr, "risk", adminKey))
	setupRisk(t, rc)
	// The agent's check goes through the same handshake as every client.
	testenv.WaitFor(t, 20*time.Second, "risk passing its TLS health check", func() bool { return len(agent.Passing(t, "risk")) == 1 })

	t.Run("risk refuses clients without a certificate from the CA", func(t *testing.T) {
		pool := cli.ClientConfig("risk").RootCAs
		noCert := credentials.NewTLS(&tls.Config{ServerName: "risk", RootCAs: pool, MinVersion: tls.VersionTLS13})
		foreign := loadTLS(t, tlsconfig.Files{Cert: filepath.Join(other, "client.crt"), Key: filepath.Join(other, "client.key"), CA: filepath.Join(dir, "ca.crt")})
		for name, creds := range map[string]credentials.TransportCredentials{
			"no client certificate":       noCert,
			"certificate from another CA": foreign.ClientCredentials("risk"),
			"plaintext":                   insecure.NewCredentials(),
		} {
			conn, err := grpc.NewClient(riskProc.GRPCAddr, grpc.WithTransportCredentials(creds))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err = riskv1.NewRiskServiceClient(conn).ListSymbols(ctx, &riskv1.ListSymbolsRequest{})
			cancel()
			conn.Close()
			if status.Code(err) != codes.Unavailable {
				t.Errorf("%s: got %v, want Unavailable (refused in the handshake)", name, err)
			}
		}
	})

	// The impostors accept any client, certificate or not: only matching's own check can stop them.
	inferencePair, err := tls.LoadX509KeyPair(filepath.Join(dir, "inference.crt"), filepath.Join(dir, "inference.key"))
	if err != nil {
		t.Fatal(err)
	}
	inferenceCreds := credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{inferencePair}, ClientAuth: tls.RequestClientCert})
	selfCert, selfKey, err := tlsconfig.SelfSigned("risk")
	if err != nil {
		t.Fatal(err)
	}
	selfPair, err := tls.X509KeyPair(selfCert, selfKey)
	if err != nil {
		t.Fatal(err)
	}
	rogues := []*rogue{
		startRogue(t, agent, "with our CA's certificate for inference", inferenceCreds),
		startRogue(t, agent, "self-signed for risk", credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{selfPair}, ClientAuth: tls.RequestClientCert})),
		startRogue(t, agent, "plaintext", insecure.NewCredentials()),
	}
	testenv.WaitFor(t, 10*time.Second, "rogues passing as risk", func() bool { return len(agent.Passing(t, "risk")) == 1+len(rogues) })

	mf := tlsconfig.FilesIn(dir, "matching")
	matching := testenv.StartService(t, testenv.Build(t, matchingPkg), nil, append([]string{
		"--consul-addr=" + agent.Addr, "--api-keys=" + apiKeys, "--check-interval=1s",
		"--risk-addr=consul:///risk", "--risk-api-key=" + adminKey, "--data-dir=" + filepath.Join(t.TempDir(), "matching"), "--shards=2",
	}, tlsArgs(mf)...)...)
	admin := matchingv1.NewMatchingServiceClient(dialTLS(t, cli, matching.GRPCAddr, "matching", adminKey))
	alice := matchingv1.NewMatchingServiceClient(dialTLS(t, cli, matching.GRPCAddr, "matching", aliceKey))
	bob := matchingv1.NewMatchingServiceClient(dialTLS(t, cli, matching.GRPCAddr, "matching", bobKey))
	testenv.WaitFor(t, 20*time.Second, "matching passing its TLS health check", func() bool { return len(agent.Passing(t, "matching")) == 1 })

	ctx := context.Background()
	must(t)(admin.AddSymbol(ctx, &matchingv1.AddSymbolRequest{Symbol: &matchingv1.Symbol{
		Symbol: "BTC-USD", TickSize: "0.5", LotSize: "0.001", MinQuantity: "0.001", MaxQuantity: "100"}}))
	// Several orders, so round robin would have spread them over every ready instance.
	for i := range 10 {
		resp := must(t)(bob.SubmitOrder(ctx, limitOrder("bob", fmt.Sprintf("ask-%d", i), matchingv1.Side_SIDE_SELL, "50000", "0.1"))).(*matchingv1.SubmitOrderResponse)
		if got := resp.GetOrder().GetStatus(); got != matchingv1.OrderStatus_ORDER_STATUS_NEW {
			t.Fatalf("ask %d: %v (%v), want NEW: risk checked it", i, got, resp.GetOrder().GetRejectReason())
		}
	}
	resp := must(t)(alice.SubmitOrder(ctx, limitOrder("alice", "bid-1", matchingv1.Side_SIDE_BUY, "50000", "0.2"))).(*matchingv1.SubmitOrderResponse)
	if got := resp.GetOrder().GetStatus(); got != matchingv1.OrderStatus_ORDER_STATUS_FILLED {
		t.Fatalf("bid: %v, want FILLED", got)
	}
	testenv.WaitFor(t, 10*time.Second, "the fill settled in the real risk", func() bool { return position(t, rc, "alice") == "0.2" })
	for _, r := range rogues {
		r.assertNothingReached(t)
	}

	// Only impostors left: matching cannot check orders, and says so, rather than trust one.
	riskProc.Signal(syscall.SIGTERM)
	if !riskProc.WaitExit(20 * time.Second) {
		t.Fatal("risk did not stop")
	}
	testenv.WaitFor(t, 10*time.Second, "only the rogues registered as risk", func() bool { return len(agent.Passing(t, "risk")) == len(rogues) })
	_, err = bob.SubmitOrder(ctx, limitOrder("bob", "ask-alone", matchingv1.Side_SIDE_SELL, "50000", "0.1"))
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("order with only impostors as risk: got %v, want Unavailable", err)
	}
	for _, r := range rogues {
		r.assertNothingReached(t)
	}
}
