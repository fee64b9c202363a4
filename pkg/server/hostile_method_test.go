package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// A method name is whatever a client sends. One that is not UTF-8 used to panic in the metrics on
// the connection's reader goroutine, wedging the connection and the server's shutdown; names the
// server does not serve used to create metric series without bound.
func TestHostileMethodNamesCannotWedgeOrGrowTheServer(t *testing.T) {
	conn, cancel, done := startApp(t)
	for _, method := range []string{"/test.Probe\xff/Do", "/scan1/x", "/scan2/x", "/test.Probe/Nope"} {
		ctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
		err := conn.Invoke(ctx, method, wrapperspb.String("x"), new(wrapperspb.StringValue))
		stop()
		if c := status.Code(err); c != codes.PermissionDenied && c != codes.Unauthenticated && c != codes.Unimplemented && c != codes.Internal {
			t.Fatalf("%q: %v, want a refusal", method, err)
		}
	}
	if _, err := call(conn, "al", "whoami"); err != nil {
		t.Fatalf("the connection no longer serves after hostile method names: %v", err)
	}
	conn.Close()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not stop after hostile method names")
	}
}

func TestMetricsLabelOnlyRegisteredMethods(t *testing.T) {
	m := newRPCMetrics(prometheus.NewRegistry())
	m.setKnown(map[string]grpc.ServiceInfo{"test.Probe": {Methods: []grpc.MethodInfo{{Name: "Do"}}}})
	m.observe("/test.Probe/Do", codes.OK, time.Millisecond)
	for i := range 100 {
		m.observe("/scan/"+strings.Repeat("x", i), codes.PermissionDenied, time.Millisecond)
	}
	m.observe("/test.Probe\xff/Do", codes.PermissionDenied, time.Millisecond)
	if n := testutil.CollectAndCount(m.handled); n != 2 {
		t.Fatalf("%d handled series, want 2 (the registered method and one for everything unknown)", n)
	}
	if v := testutil.ToFloat64(m.handled.WithLabelValues(unknownMethod, unknownMethod, codes.PermissionDenied.String())); v != 101 {
		t.Fatalf("unknown-method count %v, want 101", v)
	}
}
