package flows

import (
	"context"
	"fmt"
	"testing"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// An account's live endpoints are bounded: each event writes one delivery per endpoint.
func TestWebhookEndpointsPerAccountAreBounded(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	in := EndpointInput{AccountID: "acct-1", URL: "https://example.test/hook"}
	for i := range MaxEndpointsPerAccount {
		if _, _, err := e.svc.CreateWebhookEndpoint(ctx, "account:acct-1", fmt.Sprintf("wh-%d", i), in); err != nil {
			t.Fatalf("endpoint %d: %v", i, err)
		}
	}
	_, _, err := e.svc.CreateWebhookEndpoint(ctx, "account:acct-1", "wh-over", in)
	if errs.KindOf(err) != errs.KindFailedPrecondition {
		t.Fatalf("endpoint %d: %v, want FailedPrecondition", MaxEndpointsPerAccount+1, err)
	}
	other := EndpointInput{AccountID: "acct-2", URL: "https://example.test/hook"}
	if _, _, err := e.svc.CreateWebhookEndpoint(ctx, "account:acct-2", "wh-0", other); err != nil {
		t.Fatalf("another account's first endpoint: %v", err)
	}
}
