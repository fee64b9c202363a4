package payment_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	paymentv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/payment/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A deleted endpoint stops receiving: the deliveries it still had pending (here failing, retried
// every second at most) end, and later events owe it nothing. Another account cannot delete it (or
// learn that it exists: NotFound, as for an id that names nothing), a URL carrying a credential or
// an unknown event type is refused, naming the field, and the signing secret is never logged.
func TestDeletedWebhookEndpointStopsReceiving(t *testing.T) {
	s := startStack(t, sqliteArg(t))
	p := s.startPayment(t, "--processors=instant", "--webhook-initial-backoff=200ms", "--max-backoff=1s", "--log-level=debug")
	var requests atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		requests.Add(1)
		http.Error(w, "down", http.StatusServiceUnavailable) // every delivery stays pending
	})}
	go srv.Serve(ln) //nolint:errcheck // closed by the cleanup
	t.Cleanup(func() { srv.Close() })
	url := "http://" + ln.Addr().String() + "/hook"
	ctx := context.Background()

	for _, bad := range []struct {
		req   *paymentv1.CreateWebhookEndpointRequest
		field string
	}{
		{&paymentv1.CreateWebhookEndpointRequest{AccountId: "alice", Url: "http://user:pw@" + ln.Addr().String() + "/hook", IdempotencyKey: "bad1"}, "url"},
		{&paymentv1.CreateWebhookEndpointRequest{AccountId: "alice", Url: url, EventTypes: []string{"payment.suceeded"}, IdempotencyKey: "bad2"}, "event_types"},
	} {
		_, err := p.alice.CreateWebhookEndpoint(ctx, bad.req)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), bad.field) {
			t.Errorf("%+v: %v, want InvalidArgument naming %s", bad.req, err, bad.field)
		}
	}

	ep, err := p.alice.CreateWebhookEndpoint(ctx, &paymentv1.CreateWebhookEndpointRequest{AccountId: "alice", Url: url, IdempotencyKey: "wh"})
	if err != nil {
		t.Fatal(err)
	}
	id := ep.GetEndpoint().GetEndpointId()
	if _, err := p.alice.CreatePayment(ctx, deposit("alice", 100, "d1")); err != nil {
		t.Fatal(err)
	}
	// Retried: the deliveries are pending, and would go on being attempted.
	testenv.WaitFor(t, 30*time.Second, "the failing deliveries retried", func() bool { return requests.Load() >= 4 })

	if _, err := p.bob.DeleteWebhookEndpoint(ctx, &paymentv1.DeleteWebhookEndpointRequest{EndpointId: id}); status.Code(err) != codes.NotFound {
		t.Fatalf("bob deleting alice's endpoint: %v, want NotFound", err)
	}
	if _, err := p.alice.DeleteWebhookEndpoint(ctx, &paymentv1.DeleteWebhookEndpointRequest{EndpointId: id}); err != nil {
		t.Fatalf("alice deleting her endpoint: %v", err)
	}
	if _, err := p.alice.DeleteWebhookEndpoint(ctx, &paymentv1.DeleteWebhookEndpointRequest{EndpointId: id}); status.Code(err) != codes.NotFound {
		t.Fatalf("deleting it again: %v, want NotFound", err)
	}
	list, err := p.alice.ListWebhookEndpoints(ctx, &paymentv1.ListWebhookEndpointsRequest{AccountId: "alice"})
	if err != nil || len(list.GetEndpoints()) != 0 {
		t.Fatalf("alice's endpoints after the delete: %v %v", list.GetEndpoints(), err)
	}
	// An attempt claimed just before the delete may still land; none after that.
	time.Sleep(500 * time.Millisecond)
	before := requests.Load()
	if _, err := p.alice.CreatePayment(ctx, deposit("alice", 200, "d2")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // three retry rounds at --max-backoff
	if n := requests.Load() - before; n != 0 {
		t.Fatalf("the deleted endpoint got %d requests after its deletion", n)
	}
	// The signing secret is in the creation's answer only: not in the service's log, even at debug.
	secret := strings.TrimPrefix(ep.GetSecret(), "whsec_")
	if len(secret) < 32 || p.LogContains(secret) || !p.LogContains(id) {
		t.Fatalf("secret %q: logged %v (the log names the endpoint: %v)", ep.GetSecret(), p.LogContains(secret), p.LogContains(id))
	}
}

// Without --webhook-allow-private-addresses (production's default) an endpoint on an internal host
// on its face is refused at creation, naming url, and its key stays free; a public URL is accepted.
// Then the listing pages.
func TestWebhookEndpointsRefusedOnInternalHostsAndPaged(t *testing.T) {
	p := testenv.StartService(t, testenv.Build(t, paymentPkg), nil, "--register=false", "--api-keys="+keyring,
		"--data-dir="+t.TempDir(), "--processors=instant", "--risk-addr=127.0.0.1:1", "--rate-limit-account=off")
	alice := newPaymentClient(t, p.GRPCAddr, aliceKey)
	ctx := context.Background()
	for _, url := range []string{"http://127.0.0.1:8080/hook", "http://localhost/hook", "http://169.254.169.254/latest"} {
		_, err := alice.CreateWebhookEndpoint(ctx, &paymentv1.CreateWebhookEndpointRequest{AccountId: "alice", Url: url, IdempotencyKey: "internal"})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "url") {
			t.Fatalf("%s: %v, want InvalidArgument naming url", url, err)
		}
	}
	ep, err := alice.CreateWebhookEndpoint(ctx, &paymentv1.CreateWebhookEndpointRequest{AccountId: "alice", Url: "https://hooks.example.com/bourse", IdempotencyKey: "internal"})
	if err != nil || ep.GetReplayed() {
		t.Fatalf("public URL under the refused requests' key: %v (replayed %v)", err, ep.GetReplayed())
	}

	// Listing pages through every account's endpoints for admin, oldest first, each once; a
	// customer sees its own only; a token made up, or a payment's, is refused, naming page_token.
	bob := newPaymentClient(t, p.GRPCAddr, bobKey)
	admin := newPaymentClient(t, p.GRPCAddr, adminKey)
	want := []string{ep.GetEndpoint().GetEndpointId()}
	for i := range 4 {
		c, acct := alice, "alice"
		if i%2 == 1 {
			c, acct = bob, "bob"
		}
		e, err := c.CreateWebhookEndpoint(ctx, &paymentv1.CreateWebhookEndpointRequest{AccountId: acct, Url: fmt.Sprintf("https://hooks.example.com/%d", i),
			IdempotencyKey: fmt.Sprint("page-", i)})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, e.GetEndpoint().GetEndpointId())
	}
	var got []string
	var sizes []int
	for tok := ""; ; {
		resp, err := admin.ListWebhookEndpoints(ctx, &paymentv1.ListWebhookEndpointsRequest{PageSize: 2, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(resp.GetEndpoints()))
		for _, e := range resp.GetEndpoints() {
			got = append(got, e.GetEndpointId())
		}
		if tok = resp.GetNextPageToken(); tok == "" {
			break
		}
	}
	if !slices.Equal(got, want) || !slices.Equal(sizes, []int{2, 2, 1}) {
		t.Fatalf("admin's pages %v of %v, want %v in pages of 2, 2, 1", sizes, got, want)
	}
	mine, err := bob.ListWebhookEndpoints(ctx, &paymentv1.ListWebhookEndpointsRequest{AccountId: "bob"})
	if err != nil || len(mine.GetEndpoints()) != 2 || mine.GetNextPageToken() != "" {
		t.Fatalf("bob's endpoints: %v %v, want his 2 in one page", mine, err)
	}
	for _, tok := range []string{"bm90IGEgdG9rZW4", "x", base64.RawURLEncoding.EncodeToString([]byte("1|pay_2al5brrdffbnbgtokkm6bqtl"))} {
		_, err := admin.ListWebhookEndpoints(ctx, &paymentv1.ListWebhookEndpointsRequest{PageToken: tok})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "page_token") {
			t.Fatalf("token %q: %v, want InvalidArgument naming page_token", tok, err)
		}
	}
	if _, err := admin.ListWebhookEndpoints(ctx, &paymentv1.ListWebhookEndpointsRequest{PageSize: 101}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("page_size 101: %v, want InvalidArgument", err)
	}
}
