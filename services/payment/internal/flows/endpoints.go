package flows

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"slices"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/store"
)

// MaxEndpointsPerAccount bounds an account's live webhook endpoints: every event of the account
// writes one delivery per endpoint in the transaction that settles it, so the number is what one
// customer may add to everyone's commits.
const MaxEndpointsPerAccount = 16

// knownEventTypes is every event type the service writes: an object's creation and each status it can
// reach (payment.succeeded, refund.failed, payout.reversing, ...), sorted.
var knownEventTypes = func() []string {
	out := []string{"payment.created", "refund.created", "payout.created"}
	for _, s := range domain.PaymentStatuses {
		out = append(out, "payment."+string(s))
	}
	for _, s := range domain.RefundStatuses {
		out = append(out, "refund."+string(s))
	}
	for _, s := range domain.PayoutStatuses {
		out = append(out, "payout."+string(s))
	}
	slices.Sort(out)
	return slices.Compact(out)
}()

// EventTypes lists the event types an endpoint may subscribe to, sorted. A type outside it would be
// a subscription that never fires, so the API refuses it.
func EventTypes() []string { return slices.Clone(knownEventTypes) }

// IsEventType reports whether t is one of EventTypes.
func IsEventType(t string) bool {
	_, ok := slices.BinarySearch(knownEventTypes, t)
	return ok
}

// EndpointInput is a validated CreateWebhookEndpoint request.
type EndpointInput struct {
	AccountID  string   `json:"account_id"`
	URL        string   `json:"url"`
	EventTypes []string `json:"event_types"`
}

// CreateWebhookEndpoint registers an endpoint with a new signing secret. The replay of the same
// request returns the same secret: it is the same endpoint.
func (s *Service) CreateWebhookEndpoint(ctx context.Context, caller, key string, in EndpointInput) (domain.WebhookEndpoint, bool, error) {
	var b [24]byte
	_, _ = rand.Read(b[:])
	e := domain.WebhookEndpoint{ID: domain.NewID("we"), AccountID: in.AccountID, URL: in.URL, EventTypes: in.EventTypes,
		Secret: "whsec_" + hex.EncodeToString(b[:])}
	replay, err := s.claim(ctx, caller, key, MethodCreateEndpoint, in, e.ID, func(tx *store.Tx) error {
		n, err := tx.LiveEndpoints(ctx, in.AccountID)
		if err != nil {
			return err
		}
		if n >= MaxEndpointsPerAccount {
			return errs.New(errs.KindFailedPrecondition, "account %q has %d webhook endpoints, the most it may have: delete one first", in.AccountID, n)
		}
		if err := tx.InsertEndpoint(ctx, caller, &e); err != nil {
			return err
		}
		resp, err := json.Marshal(e)
		if err != nil {
			return err
		}
		return tx.CompleteKey(ctx, caller, key, resp, nil)
	})
	if err != nil || replay != nil {
		var got domain.WebhookEndpoint
		if err == nil {
			err = json.Unmarshal(replay, &got)
		}
		return got, err == nil, err
	}
	return e, false, nil
}
