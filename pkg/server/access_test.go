package server

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/bourse-dev/bourse/pkg/auth"
)

// guardEntered counts calls that reached a guard method handler, i.e. whose message gRPC read.
var guardEntered atomic.Int64

func guardUnary(name string) grpc.MethodDesc {
	return grpc.MethodDesc{MethodName: name, Handler: func(_ any, ctx context.Context, dec func(any) error, in grpc.UnaryServerInterceptor) (any, error) {
		guardEntered.Add(1)
		req := new(wrapperspb.BytesValue)
		if err := dec(req); err != nil {
			return nil, err
		}
		h := func(ctx context.Context, _ any) (any, error) {
			id, _ := auth.FromContext(ctx)
			return wrapperspb.String(id.String()), nil
		}
		return in(ctx, req, &grpc.UnaryServerInfo{FullMethod: "/test.Guard/" + name}, h)
	}}
}

// guardDesc is a service with one method per access rule and a stream that stays open until the
// client leaves. (A registered method missing from the policy stops the server from starting, see
// TestRunRefusesUnclassifiedMethods; "Unlisted" below is a name the policy does not know.)
var guardDesc = grpc.ServiceDesc{
	ServiceName: "test.Guard",
	HandlerType: (*any)(nil),
	Methods:     []grpc.MethodDesc{guardUnary("Read"), guardUnary("Internal"), guardUnary("Admin")},
	Streams: []grpc.StreamDesc{{StreamName: "Hold", ServerStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
		guardEntered.Add(1)
		id, _ := auth.FromContext(ss.Context())
		if err := ss.SendMsg(wrapperspb.String(id.String())); err != nil {
			return err
		}
		<-ss.Context().Done()
		return nil
	}}},
}

var guardPolicy = auth.Policy{
	"/test.Guard/Read":     auth.Accounts,
	"/test.Guard/Internal": auth.Services("matching"),
	"/test.Guard/Admin":    auth.AdminOnly,
	"/test.Guard/Hold":     auth.Accounts,
}

func guardService(context.Context, *Env) (Service, error) {
	return Service{Register: func(s grpc.ServiceRegistrar) { s.RegisterService(&guardDesc, struct{}{}) }, Policy: guardPolicy}, nil
}

const guardKeys = "adm=admin:ops,al=account:alice,bo=account:bob,mk=service:matching,pk=service:payment"

// runGuard serves guardDesc in-process on a loopback port with args added to the defaults.
func runGuard(t *testing.T, args ...string) *grpc.ClientConn {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready.json")
	app := NewApp("guard", Defaults{GRPCAddr: "127.0.0.1:0"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	base := []string{"--register=false", "--ready-file=" + ready, "--api-keys=" + guardKeys, "--log-level=error"}
	go func() { done <- app.Run(ctx, append(base, args...), guardService) }()
	addr := waitReady(t, ready, done)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return conn
}

func waitReady(t *testing.T, ready string, done <-chan error) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, err := os.ReadFile(ready); err == nil {
			return strings.Split(strings.Split(string(b), `"grpc_addr":"`)[1], `"`)[0]
		}
		select {
		case err := <-done:
			t.Fatalf("app stopped before it was ready: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("app not ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func guardCall(conn *grpc.ClientConn, key, method string, payload []byte) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if key != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
	}
	out := new(wrapperspb.StringValue)
	err := conn.Invoke(ctx, "/test.Guard/"+method, wrapperspb.Bytes(payload), out)
	return out.Value, err
}

// Every method × every kind of caller, through a real server on loopback.
func TestAccessMatrix(t *testing.T) {
	conn := runGuard(t)
	const ok = codes.OK
	den, unauth := codes.PermissionDenied, codes.Unauthenticated
	keys := []string{"", "nope", "al", "mk", "pk", "adm"}
	want := map[string][]codes.Code{
		"Read":     {unauth, unauth, ok, den, den, ok},
		"Internal": {unauth, unauth, den, ok, den, ok},
		"Admin":    {unauth, unauth, den, den, den, ok},
		// Not in the policy: refused to everyone, admin included, whatever the key (PermissionDenied
		// before gRPC would answer Unimplemented).
		"Unlisted": {den, den, den, den, den, den},
	}
	for method, codesByKey := range want {
		for i, key := range keys {
			who, err := guardCall(conn, key, method, nil)
			if got := status.Code(err); got != codesByKey[i] {
				t.Errorf("%s with key %q: %v, want %v", method, key, err, codesByKey[i])
			} else if got == ok && who == "anonymous" {
				t.Errorf("%s with key %q reached the handler without an identity", method, key)
			}
		}
	}
}

// The tap refuses a caller before gRPC reads its message: a 4 MiB request without a key never
// reaches the handler's decoder.
func TestAuthBeforeDecode(t *testing.T) {
	conn := runGuard(t)
	big := make([]byte, 4<<20)
	before := guardEntered.Load()
	for _, c := range []struct{ key, method string }{{"", "Read"}, {"nope", "Read"}, {"al", "Admin"}, {"pk", "Internal"}} {
		if _, err := guardCall(conn, c.key, c.method, big); status.Code(err) != codes.Unauthenticated && status.Code(err) != codes.PermissionDenied {
			t.Fatalf("%s with %q: %v", c.method, c.key, err)
		}
	}
	if n := guardEntered.Load() - before; n != 0 {
		t.Errorf("%d refused calls reached the method handler (their message was read)", n)
	}
	if _, err := guardCall(conn, "al", "Read", big); err != nil {
		t.Fatalf("allowed call: %v", err)
	}
	if guardEntered.Load()-before != 1 {
		t.Error("the allowed call did not reach the handler")
	}
}

// Account identities are rate limited by default; beyond the bucket the answer is ResourceExhausted
// and the bucket refills. Other kinds are not limited unless configured.
func TestRateLimitPerIdentity(t *testing.T) {
	conn := runGuard(t, "--rate-limit-account=20/s:5")
	for i := range 5 {
		if _, err := guardCall(conn, "al", "Read", nil); err != nil {
			t.Fatalf("call %d within the burst: %v", i, err)
		}
	}
	_, err := guardCall(conn, "al", "Read", nil)
	if st := status.Convert(err); st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "account:alice") {
		t.Fatalf("call past the burst: %v, want ResourceExhausted naming the identity", err)
	}
	// Another account has its own bucket; an admin is not limited.
	if _, err := guardCall(conn, "bo", "Read", nil); err != nil {
		t.Errorf("bob limited by alice's calls: %v", err)
	}
	for i := range 20 {
		if _, err := guardCall(conn, "adm", "Read", nil); err != nil {
			t.Fatalf("admin call %d: %v", i, err)
		}
	}
	time.Sleep(150 * time.Millisecond) // 20/s: one token every 50ms
	if _, err := guardCall(conn, "al", "Read", nil); err != nil {
		t.Errorf("after refilling: %v", err)
	}
}

// The limiter's arithmetic, on a fake clock.
func TestTokenBucket(t *testing.T) {
	now := time.Unix(0, 0)
	l := newRateLimiter(map[auth.Role]Rate{auth.RoleAccount: {PerSecond: 10, Burst: 2}}, func() time.Time { return now })
	alice := auth.Account("alice")
	got := []bool{l.allow(alice), l.allow(alice), l.allow(alice)}
	if !got[0] || !got[1] || got[2] {
		t.Fatalf("burst of 2: %v", got)
	}
	now = now.Add(100 * time.Millisecond)
	if !l.allow(alice) || l.allow(alice) {
		t.Error("100ms at 10/s should give exactly one token")
	}
	now = now.Add(time.Hour)
	if !l.allow(alice) || !l.allow(alice) || l.allow(alice) {
		t.Error("an idle bucket holds at most its burst")
	}
	if !l.allow(auth.Service("matching")) {
		t.Error("a kind without a rate was limited")
	}
	for _, bad := range []string{"10", "x/s", "-1/s", "10/s:0", "10/s:x"} {
		if _, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) accepted", bad)
		}
	}
	if r, err := ParseRate("50/s"); err != nil || r != (Rate{PerSecond: 50, Burst: 100}) {
		t.Errorf("ParseRate(50/s) = %v, %v", r, err)
	}
}

// A connection may hold --max-concurrent-streams calls; the next waits until one ends.
func TestMaxConcurrentStreams(t *testing.T) {
	conn := runGuard(t, "--max-concurrent-streams=2")
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer al")
	open := func(ctx context.Context) (grpc.ClientStream, error) {
		s, err := conn.NewStream(ctx, &guardDesc.Streams[0], "/test.Guard/Hold")
		if err != nil {
			return nil, err
		}
		if err := s.SendMsg(wrapperspb.Bytes(nil)); err != nil {
			return nil, err
		}
		if err := s.CloseSend(); err != nil {
			return nil, err
		}
		return s, s.RecvMsg(new(wrapperspb.StringValue))
	}
	var cancels []context.CancelFunc
	for i := range 2 {
		c, cancel := context.WithCancel(ctx)
		cancels = append(cancels, cancel)
		if _, err := open(c); err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
	}
	third, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err := open(third)
	cancel()
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("third concurrent stream: %v, want it to wait (DeadlineExceeded)", err)
	}
	cancels[0]()
	fourth, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := open(fourth); err != nil {
		t.Fatalf("stream after one closed: %v", err)
	}
	cancels[1]()
}

// A service whose policy misses a registered method does not start.
func TestRunRefusesUnclassifiedMethods(t *testing.T) {
	app := NewApp("guard", Defaults{GRPCAddr: "127.0.0.1:0"})
	err := app.Run(context.Background(), []string{"--register=false", "--log-level=error"}, func(context.Context, *Env) (Service, error) {
		return Service{Register: func(s grpc.ServiceRegistrar) { s.RegisterService(&guardDesc, struct{}{}) }, Policy: auth.Policy{"/test.Guard/Read": auth.Accounts}}, nil
	})
	if err == nil || !strings.Contains(err.Error(), "/test.Guard/Admin") || !strings.Contains(err.Error(), "/test.Guard/Hold") {
		t.Fatalf("Run = %v, want a refusal naming the unclassified methods", err)
	}
	if errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

// replaceKeyFile swaps path's content in one rename, as a Secret volume or a careful operator does.
func replaceKeyFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path+".new", []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

// Keys rotate without a restart: the server picks up a changed --api-keys-file by itself, and a bad
// file leaves the keys in force.
func TestKeyFileRotationWithoutRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "guard.keys")
	write := func(content string) { t.Helper(); replaceKeyFile(t, path, content) }
	write("# guard's callers\nold-key=service:matching\n")
	conn := runGuard(t, "--api-keys-file="+path, "--api-keys-reload=20ms")
	until := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 5s", what)
			}
		}
	}
	if who, err := guardCall(conn, "old-key", "Internal", nil); err != nil || who != "service:matching" {
		t.Fatalf("key from the file: %q %v", who, err)
	}
	write("new-key=service:matching\n")
	until("new key accepted", func() bool { _, err := guardCall(conn, "new-key", "Internal", nil); return err == nil })
	if _, err := guardCall(conn, "old-key", "Internal", nil); status.Code(err) != codes.Unauthenticated {
		t.Errorf("rotated-out key: %v, want Unauthenticated", err)
	}
	write("new-key=service:matching\nnew-key=admin:x\n") // duplicate: refused, keys in force stay
	time.Sleep(200 * time.Millisecond)
	if who, err := guardCall(conn, "new-key", "Internal", nil); err != nil || who != "service:matching" {
		t.Errorf("after a bad file: %q %v", who, err)
	}
	if _, err := guardCall(conn, "adm", "Admin", nil); err != nil {
		t.Errorf("--api-keys alongside the file: %v", err)
	}
}

// A stream's log line names its caller (the identity is in the stream's own context).
func TestStreamLogNamesCaller(t *testing.T) {
	logFile, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = logFile // the runtime's logger writes to stderr; no test here runs in parallel
	defer func() { os.Stderr = stderr }()
	ready := filepath.Join(t.TempDir(), "ready.json")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- NewApp("guard", Defaults{GRPCAddr: "127.0.0.1:0"}).Run(ctx,
			[]string{"--register=false", "--ready-file=" + ready, "--api-keys=" + guardKeys, "--log-level=debug"}, guardService)
	}()
	conn, err := grpc.NewClient(waitReady(t, ready, done), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithCancel(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer al"))
	s, err := conn.NewStream(sctx, &guardDesc.Streams[0], "/test.Guard/Hold")
	if err == nil {
		err = s.SendMsg(wrapperspb.Bytes(nil))
	}
	if err == nil {
		err = s.RecvMsg(new(wrapperspb.StringValue))
	}
	if err != nil {
		t.Fatal(err)
	}
	scancel()
	conn.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	os.Stderr = stderr
	b, _ := os.ReadFile(logFile.Name())
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.Contains(line, "msg=rpc") && strings.Contains(line, "method=/test.Guard/Hold") {
			if !strings.Contains(line, "caller=account:alice") {
				t.Fatalf("stream log line without the caller: %s", line)
			}
			return
		}
	}
	t.Fatalf("no log line for the stream:\n%s", b)
}

// A call that did not pass the tap (no transport runs without one here, but the interceptor must not
// rely on it) is authorised by the interceptor from the incoming metadata.
func TestInterceptorAuthorisesWithoutTap(t *testing.T) {
	keys, err := auth.NewKeySource(guardKeys, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ic := &interceptors{log: slog.New(slog.DiscardHandler), keys: keys, policy: guardPolicy, metrics: newRPCMetrics(prometheus.NewRegistry())}
	handler := func(ctx context.Context, _ any) (any, error) {
		id, _ := auth.FromContext(ctx)
		return id.String(), nil
	}
	for _, c := range []struct {
		key, method, who string
		code             codes.Code
	}{
		{"al", "Read", "account:alice", codes.OK},
		{"", "Read", "", codes.Unauthenticated},
		{"al", "Admin", "", codes.PermissionDenied},
		{"mk", "Internal", "service:matching", codes.OK},
		{"adm", "Unlisted", "", codes.PermissionDenied},
	} {
		ctx := context.Background()
		if c.key != "" {
			ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", "Bearer "+c.key))
		}
		got, err := ic.unary(ctx, nil, &grpc.UnaryServerInfo{FullMethod: "/test.Guard/" + c.method}, handler)
		if status.Code(err) != c.code || (err == nil && got != c.who) {
			t.Errorf("%s with %q: %v %v, want %v %s", c.method, c.key, got, err, c.code, c.who)
		}
	}
}
