package server

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/bourse-dev/bourse/pkg/auth"
)

// echoDesc is a bidirectional stream that answers every message until the client stops.
var echoDesc = grpc.ServiceDesc{
	ServiceName: "test.Echo",
	HandlerType: (*any)(nil),
	Streams: []grpc.StreamDesc{{StreamName: "Chat", ServerStreams: true, ClientStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
		for {
			m := new(wrapperspb.StringValue)
			if err := ss.RecvMsg(m); err != nil {
				return err
			}
			if err := ss.SendMsg(m); err != nil {
				return err
			}
		}
	}}},
}

// runEcho serves echoDesc in-process on a loopback port until ctx ends, with args added to the defaults.
func runEcho(t *testing.T, ctx context.Context, args ...string) *grpc.ClientConn {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready.json")
	done := make(chan error, 1)
	go func() {
		done <- NewApp("echo", Defaults{GRPCAddr: "127.0.0.1:0"}).Run(ctx,
			append([]string{"--register=false", "--ready-file=" + ready, "--log-level=error"}, args...),
			func(context.Context, *Env) (Service, error) {
				return Service{Register: func(s grpc.ServiceRegistrar) { s.RegisterService(&echoDesc, struct{}{}) },
					Policy: auth.Policy{"/test.Echo/Chat": auth.Accounts}}, nil
			})
	}()
	conn, err := grpc.NewClient(waitReady(t, ready, done), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// A key taken out of the key file ends the streams opened with it at their next message; streams of
// keys still in force go on.
func TestRevokedKeyEndsItsOpenStreams(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "echo.keys")
	write := func(content string) { t.Helper(); replaceKeyFile(t, path, content) }
	write("old-key=account:alice\nbob-key=account:bob\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn := runEcho(t, ctx, "--api-keys-file="+path, "--api-keys-reload=20ms")
	open := func(key string) grpc.ClientStream {
		t.Helper()
		sctx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
		s, err := conn.NewStream(sctx, &echoDesc.Streams[0], "/test.Echo/Chat")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	roundTrip := func(s grpc.ClientStream) error {
		if err := s.SendMsg(wrapperspb.String("ping")); err != nil && !errors.Is(err, io.EOF) {
			return err // io.EOF: the server ended the stream, whose status RecvMsg reports
		}
		return s.RecvMsg(new(wrapperspb.StringValue))
	}
	alice, bob := open("old-key"), open("bob-key")
	for name, s := range map[string]grpc.ClientStream{"alice": alice, "bob": bob} {
		if err := roundTrip(s); err != nil {
			t.Fatalf("%s before the rotation: %v", name, err)
		}
	}
	write("new-key=account:alice\nbob-key=account:bob\n")
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := roundTrip(alice)
		if status.Code(err) == codes.Unauthenticated {
			break
		}
		if err != nil {
			t.Fatalf("alice's stream after her key was revoked: %v, want Unauthenticated", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("a stream opened with a revoked key still serves 5s after the key file changed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := roundTrip(bob); err != nil {
		t.Fatalf("bob's stream, whose key stays, after the rotation: %v", err)
	}
}
