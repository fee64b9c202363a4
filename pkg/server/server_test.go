package server

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/bourse-dev/bourse/pkg/auth"
	"github.com/bourse-dev/bourse/pkg/errs"
)

// probeService is a hand-written gRPC service whose one method does what its input string says.
var probeDesc = grpc.ServiceDesc{
	ServiceName: "test.Probe",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Do",
		Handler: func(_ any, ctx context.Context, dec func(any) error, in grpc.UnaryServerInterceptor) (any, error) {
			req := new(wrapperspb.StringValue)
			if err := dec(req); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, r any) (any, error) { return probe(ctx, r.(*wrapperspb.StringValue).Value) }
			return in(ctx, req, &grpc.UnaryServerInfo{FullMethod: "/test.Probe/Do"}, h)
		},
	}},
}

var probePolicy = auth.Policy{"/test.Probe/Do": auth.Accounts}

func probe(ctx context.Context, what string) (any, error) {
	switch what {
	case "panic":
		panic("boom")
	case "invalid":
		return nil, errs.Invalid("price", "not on tick")
	case "secret-internal":
		return nil, os.ErrPermission
	case "whoami":
		id, _ := auth.FromContext(ctx)
		return wrapperspb.String(id.Role.String() + ":" + id.Subject), nil
	}
	return &emptypb.Empty{}, nil
}

func startApp(t *testing.T) (*grpc.ClientConn, context.CancelFunc, chan error) {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready.json")
	app := NewApp("probe", Defaults{GRPCAddr: "127.0.0.1:0"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, []string{"--register=false", "--ready-file=" + ready, "--api-keys=adm=admin:ops,al=account:alice", "--log-level=error"},
			func(context.Context, *Env) (Service, error) {
				return Service{Register: func(s grpc.ServiceRegistrar) { s.RegisterService(&probeDesc, struct{}{}) }, Policy: probePolicy}, nil
			})
	}()
	var addr string
	deadline := time.Now().Add(10 * time.Second)
	for addr == "" {
		if b, err := os.ReadFile(ready); err == nil {
			addr = strings.Split(strings.Split(string(b), `"grpc_addr":"`)[1], `"`)[0]
		} else if time.Now().After(deadline) {
			t.Fatal("app not ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); cancel() })
	return conn, cancel, done
}

func call(conn *grpc.ClientConn, key, what string) (string, error) {
	ctx := context.Background()
	if key != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
	}
	out := new(wrapperspb.StringValue)
	err := conn.Invoke(ctx, "/test.Probe/Do", wrapperspb.String(what), out)
	return out.Value, err
}

func TestInterceptorsMapErrorsRecoverAndAuthenticate(t *testing.T) {
	conn, cancel, done := startApp(t)

	if who, err := call(conn, "al", "whoami"); err != nil || who != "account:alice" {
		t.Errorf("whoami = %q, %v", who, err)
	}
	_, err := call(conn, "", "whoami")
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("no key: %v", err)
	}
	_, err = call(conn, "al", "invalid")
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || st.Message() != "price: not on tick" {
		t.Errorf("domain error mapped to %v %q", st.Code(), st.Message())
	}
	_, err = call(conn, "al", "secret-internal")
	if st := status.Convert(err); st.Code() != codes.Internal || strings.Contains(st.Message(), "permission") {
		t.Errorf("unknown error mapped to %v %q; want Internal without its text", st.Code(), st.Message())
	}
	_, err = call(conn, "al", "panic")
	if status.Code(err) != codes.Internal {
		t.Errorf("panic: %v", err)
	}
	if _, err := call(conn, "al", "ok"); err != nil {
		t.Errorf("server unusable after a panic: %v", err)
	}
	res, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: "probe"})
	if err != nil || res.Status != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health without key: %v %v", res, err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	for _, args := range [][]string{
		{"--register=false", "--log-level=loud"},
		{"--register=false", "--api-keys=k=root:x"},
		{"--register=false", "--grpc-addr=256.0.0.1:1"},
	} {
		app := NewApp("probe", Defaults{GRPCAddr: "127.0.0.1:0"})
		err := app.Run(context.Background(), args, func(context.Context, *Env) (Service, error) {
			t.Fatal("build called despite bad config")
			return Service{}, nil
		})
		if err == nil {
			t.Errorf("Run(%v) accepted bad config", args)
		}
	}
}
