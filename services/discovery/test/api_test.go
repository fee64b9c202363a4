package discovery_test

import (
	"context"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	discoveryv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/discovery/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

func ids(instances []*discoveryv1.ServiceInstance) []string {
	out := make([]string, len(instances))
	for i, inst := range instances {
		out[i] = inst.GetId()
	}
	return out
}

// Watch sends the set at once, then a change within 2s of a registration and of a deregistration.
func TestWatchStreamsRegistrationAndDeregistration(t *testing.T) {
	agent := testenv.StartConsul(t)
	proc := startDiscovery(t, agent, nil)
	admin := dial(t, proc.GRPCAddr, adminKey)
	reader := dial(t, proc.GRPCAddr, serviceKey)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := reader.Watch(ctx, &discoveryv1.WatchRequest{Name: "web", Tags: []string{"blue"}})
	if err != nil {
		t.Fatal(err)
	}
	initial, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(initial.GetInstances()) != 0 {
		t.Fatalf("initial set = %v, want empty", ids(initial.GetInstances()))
	}

	// A real TCP listener for the instance's check to hit.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	port := uint32(lis.Addr().(*net.TCPAddr).Port)

	// A green instance must not show up in a watch for blue.
	if _, err := admin.Register(ctx, &discoveryv1.RegisterRequest{Id: "web-green", Name: "web", Address: "127.0.0.1", Port: port,
		Tags: []string{"green"}, Check: &discoveryv1.HealthCheck{Kind: discoveryv1.CheckKind_CHECK_KIND_NONE}}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := admin.Register(ctx, &discoveryv1.RegisterRequest{Id: "web-1", Name: "web", Address: "127.0.0.1", Port: port,
		Tags: []string{"blue"}, Metadata: map[string]string{"zone": "a"},
		Check: &discoveryv1.HealthCheck{Kind: discoveryv1.CheckKind_CHECK_KIND_NONE}}); err != nil {
		t.Fatal(err)
	}
	got, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("registration reached the watcher after %v, want < 2s", elapsed)
	}
	if !slices.Equal(ids(got.GetInstances()), []string{"web-1"}) || got.GetInstances()[0].GetMetadata()["zone"] != "a" {
		t.Fatalf("after register: %v", got.GetInstances())
	}
	t.Logf("registration reached the watch in %v", time.Since(start))

	start = time.Now()
	if _, err := admin.Deregister(ctx, &discoveryv1.DeregisterRequest{Id: "web-1"}); err != nil {
		t.Fatal(err)
	}
	got, err = stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("deregistration reached the watcher after %v, want < 2s", elapsed)
	}
	if len(got.GetInstances()) != 0 {
		t.Fatalf("after deregister: %v", ids(got.GetInstances()))
	}
	t.Logf("deregistration reached the watch in %v", time.Since(start))
}

// Register with a gRPC check against a live server, then Discover with filters and a long poll.
func TestRegisterDiscoverWithFiltersAndLongPoll(t *testing.T) {
	agent := testenv.StartConsul(t)
	proc := startDiscovery(t, agent, nil)
	admin := dial(t, proc.GRPCAddr, adminKey)
	ctx := ctxTimeout(t, 30*time.Second)

	host, portStr, _ := net.SplitHostPort(proc.GRPCAddr)
	port64, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		t.Fatal(err)
	}
	port := uint32(port64)
	// The discovery process itself serves grpc.health.v1, so a gRPC check against it passes.
	reg, err := admin.Register(ctx, &discoveryv1.RegisterRequest{
		Name: "ledger", Address: host, Port: port, Tags: []string{"v2", "primary"},
		Metadata: map[string]string{"region": "eu"},
		Check:    &discoveryv1.HealthCheck{Interval: durationpb.New(time.Second)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if reg.GetInstance().GetId() != "ledger-"+host+"-"+portStr {
		t.Errorf("default id = %q", reg.GetInstance().GetId())
	}
	if _, err := admin.Register(ctx, &discoveryv1.RegisterRequest{Id: "ledger-old", Name: "ledger", Address: host, Port: port,
		Tags: []string{"v1"}, Check: &discoveryv1.HealthCheck{Interval: durationpb.New(time.Second)}}); err != nil {
		t.Fatal(err)
	}
	var all *discoveryv1.DiscoverResponse
	testenv.WaitFor(t, 10*time.Second, "both ledgers passing", func() bool {
		all, err = admin.Discover(ctx, &discoveryv1.DiscoverRequest{Name: "ledger"})
		return err == nil && len(all.GetInstances()) == 2
	})
	for _, inst := range all.GetInstances() {
		if inst.GetHealth() != discoveryv1.HealthStatus_HEALTH_STATUS_PASSING {
			t.Errorf("%s health = %v", inst.GetId(), inst.GetHealth())
		}
	}
	cases := []struct {
		req  *discoveryv1.DiscoverRequest
		want []string
	}{
		{&discoveryv1.DiscoverRequest{Name: "ledger", Tags: []string{"v2"}}, []string{reg.GetInstance().GetId()}},
		{&discoveryv1.DiscoverRequest{Name: "ledger", Tags: []string{"v2", "v1"}}, []string{}},
		{&discoveryv1.DiscoverRequest{Name: "ledger", Metadata: map[string]string{"region": "eu"}}, []string{reg.GetInstance().GetId()}},
		{&discoveryv1.DiscoverRequest{Name: "ledger", Metadata: map[string]string{"region": "us"}}, []string{}},
		{&discoveryv1.DiscoverRequest{Name: "unknown"}, []string{}},
	}
	for _, c := range cases {
		res, err := admin.Discover(ctx, c.req)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(res.GetInstances()), c.want) {
			t.Errorf("Discover(%v) = %v, want %v", c.req, ids(res.GetInstances()), c.want)
		}
	}

	// Long poll: returns when ledger-old goes away, well before its 20s wait.
	done := make(chan *discoveryv1.DiscoverResponse, 1)
	go func() {
		res, err := admin.Discover(ctx, &discoveryv1.DiscoverRequest{Name: "ledger", WaitIndex: all.GetIndex(), WaitTime: durationpb.New(20 * time.Second)})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	if _, err := admin.Deregister(ctx, &discoveryv1.DeregisterRequest{Id: "ledger-old"}); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-done:
		if res == nil || res.GetIndex() <= all.GetIndex() || len(res.GetInstances()) != 1 {
			t.Fatalf("long poll answer %v", res)
		}
		t.Logf("long poll woke %v after the change", time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("long poll did not wake on the change")
	}

	if _, err := admin.Deregister(ctx, &discoveryv1.DeregisterRequest{Id: "ledger-old"}); status.Code(err) != codes.NotFound {
		t.Fatalf("deregistering twice: %v, want NotFound", err)
	}
}

// Bad input to every RPC is InvalidArgument naming the field, and registers nothing.
func TestBadInputIsInvalidArgumentAndChangesNothing(t *testing.T) {
	agent := testenv.StartConsul(t)
	proc := startDiscovery(t, agent, nil)
	admin := dial(t, proc.GRPCAddr, adminKey)
	ctx := ctxTimeout(t, 30*time.Second)
	before, _, err := agent.Client.Catalog().Services(nil)
	if err != nil {
		t.Fatal(err)
	}

	ok := func() *discoveryv1.RegisterRequest {
		return &discoveryv1.RegisterRequest{Name: "svc", Address: "127.0.0.1", Port: 8080}
	}
	with := func(edit func(r *discoveryv1.RegisterRequest)) *discoveryv1.RegisterRequest {
		r := ok()
		edit(r)
		return r
	}
	register := []struct {
		field string
		req   *discoveryv1.RegisterRequest
	}{
		{"name", with(func(r *discoveryv1.RegisterRequest) { r.Name = "" })},
		{"name", with(func(r *discoveryv1.RegisterRequest) { r.Name = "bad name!" })},
		{"port", with(func(r *discoveryv1.RegisterRequest) { r.Port = 0 })},
		{"port", with(func(r *discoveryv1.RegisterRequest) { r.Port = 70000 })},
		{"address", with(func(r *discoveryv1.RegisterRequest) { r.Address = "" })},
		{"address", with(func(r *discoveryv1.RegisterRequest) { r.Address = "not an address" })},
		{"address", with(func(r *discoveryv1.RegisterRequest) { r.Address = "0.0.0.0" })},
		{"id", with(func(r *discoveryv1.RegisterRequest) { r.Id = "-starts-with-dash" })},
		{"tags[1]", with(func(r *discoveryv1.RegisterRequest) { r.Tags = []string{"ok", "has space"} })},
		{`metadata["bad key"]`, with(func(r *discoveryv1.RegisterRequest) { r.Metadata = map[string]string{"bad key": "v"} })},
		{`metadata["consul-x"]`, with(func(r *discoveryv1.RegisterRequest) { r.Metadata = map[string]string{"consul-x": "v"} })},
		{"check.interval", with(func(r *discoveryv1.RegisterRequest) {
			r.Check = &discoveryv1.HealthCheck{Interval: durationpb.New(100 * time.Millisecond)}
		})},
		{"check.timeout", with(func(r *discoveryv1.RegisterRequest) {
			r.Check = &discoveryv1.HealthCheck{Interval: durationpb.New(time.Second), Timeout: durationpb.New(5 * time.Second)}
		})},
		{"check.deregister_critical_after", with(func(r *discoveryv1.RegisterRequest) {
			r.Check = &discoveryv1.HealthCheck{DeregisterCriticalAfter: durationpb.New(time.Second)}
		})},
		{"check.target", with(func(r *discoveryv1.RegisterRequest) {
			r.Check = &discoveryv1.HealthCheck{Kind: discoveryv1.CheckKind_CHECK_KIND_HTTP, Target: "ftp://x"}
		})},
		{"check.kind", with(func(r *discoveryv1.RegisterRequest) { r.Check = &discoveryv1.HealthCheck{Kind: 99} })},
	}
	for _, c := range register {
		_, err := admin.Register(ctx, c.req)
		expectInvalid(t, "Register "+c.field, err, c.field)
	}
	_, err = admin.Deregister(ctx, &discoveryv1.DeregisterRequest{})
	expectInvalid(t, "Deregister", err, "id")
	_, err = admin.Deregister(ctx, &discoveryv1.DeregisterRequest{Id: "a b"})
	expectInvalid(t, "Deregister", err, "id")
	_, err = admin.Discover(ctx, &discoveryv1.DiscoverRequest{})
	expectInvalid(t, "Discover", err, "name")
	_, err = admin.Discover(ctx, &discoveryv1.DiscoverRequest{Name: "svc", WaitIndex: 1, WaitTime: durationpb.New(time.Hour)})
	expectInvalid(t, "Discover", err, "wait_time")
	_, err = admin.Discover(ctx, &discoveryv1.DiscoverRequest{Name: "svc", Tags: []string{""}})
	expectInvalid(t, "Discover", err, "tags[0]")
	stream, err := admin.Watch(ctx, &discoveryv1.WatchRequest{Name: "no/slash"})
	if err == nil {
		_, err = stream.Recv()
	}
	expectInvalid(t, "Watch", err, "name")

	after, _, err := agent.Client.Catalog().Services(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("bad input changed the catalog: before %v, after %v", before, after)
	}
}

func expectInvalid(t *testing.T, what string, err error, field string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), field+":") {
		t.Errorf("%s: got %v %q, want InvalidArgument naming %q", what, st.Code(), st.Message(), field)
	}
}

// Register and Deregister need an admin key; reads need any known key; health needs none.
func TestAuthentication(t *testing.T) {
	agent := testenv.StartConsul(t)
	proc := startDiscovery(t, agent, nil)
	ctx := ctxTimeout(t, 10*time.Second)
	req := &discoveryv1.RegisterRequest{Name: "svc", Address: "127.0.0.1", Port: 1}
	if _, err := dial(t, proc.GRPCAddr, "").Register(ctx, req); status.Code(err) != codes.Unauthenticated {
		t.Errorf("no key: %v", err)
	}
	if _, err := dial(t, proc.GRPCAddr, "wrong").Discover(ctx, &discoveryv1.DiscoverRequest{Name: "svc"}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("unknown key: %v", err)
	}
	if _, err := dial(t, proc.GRPCAddr, accountKey).Register(ctx, req); status.Code(err) != codes.PermissionDenied {
		t.Errorf("account key on Register: %v", err)
	}
	if _, err := dial(t, proc.GRPCAddr, serviceKey).Register(ctx, req); status.Code(err) != codes.PermissionDenied {
		t.Errorf("service key on Register: %v", err)
	}
	// The catalog is topology (addresses, ports, metadata): a customer key does not read it.
	if _, err := dial(t, proc.GRPCAddr, accountKey).Discover(ctx, &discoveryv1.DiscoverRequest{Name: "svc"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("account key on Discover: %v", err)
	}
	if ids := agent.Registered(t, "svc"); len(ids) != 0 {
		t.Errorf("refused calls registered %v", ids)
	}
}

// grpcurl lists the services through reflection, and can call Discover with a key.
func TestGrpcurlReflection(t *testing.T) {
	agent := testenv.StartConsul(t)
	proc := startDiscovery(t, agent, nil)
	grpcurl := testenv.Tool(t, "grpcurl")
	out, err := exec.Command(grpcurl, "-plaintext", proc.GRPCAddr, "list").CombinedOutput()
	if err != nil {
		t.Fatalf("grpcurl list: %v\n%s", err, out)
	}
	for _, want := range []string{"bourse.discovery.v1.DiscoveryService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("grpcurl list lacks %s:\n%s", want, out)
		}
	}
	out, err = exec.Command(grpcurl, "-plaintext", "-H", "authorization: Bearer "+serviceKey,
		"-d", `{"name":"discovery"}`, proc.GRPCAddr, "bourse.discovery.v1.DiscoveryService/Discover").CombinedOutput()
	if err != nil {
		t.Fatalf("grpcurl Discover: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `"index"`) {
		t.Errorf("grpcurl Discover answered:\n%s", out)
	}
	out, err = exec.Command(grpcurl, "-plaintext", proc.GRPCAddr, "grpc.health.v1.Health/Check").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SERVING") {
		t.Errorf("grpcurl health: %v\n%s", err, out)
	}
}
