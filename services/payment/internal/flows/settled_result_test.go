package flows

import (
	"context"
	"reflect"
	"testing"

	"github.com/bourse-dev/bourse/services/payment/internal/domain"
)

// The payment a settled CreatePayment answers (taken from its settling transaction, not read
// again) is the stored one with its attempts, and a replay of the key answers the same.
func TestCreatePaymentAnswersTheStoredPayment(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, token := range []string{"tok", "tok_decline"} {
		got, replayed, err := e.svc.CreatePayment(ctx, "account:alice", "key-"+token, deposit(250, token))
		if err != nil || replayed {
			t.Fatalf("%s: replayed %v, %v", token, replayed, err)
		}
		if len(got.Attempts) != 1 {
			t.Fatalf("%s: %d attempts in the answer, want 1", token, len(got.Attempts))
		}
		stored := requireAnsweredAsStored(t, e, token, got)
		again, replayed, err := e.svc.CreatePayment(ctx, "account:alice", "key-"+token, deposit(250, token))
		if err != nil || !replayed || !reflect.DeepEqual(again, stored) {
			t.Fatalf("%s: replay (replayed %v, %v) %+v\nstored %+v", token, replayed, err, again, stored)
		}
	}
}

// requireAnsweredAsStored fails unless answer (to a request with a payment token) is the payment as
// stored, and returns that.
func requireAnsweredAsStored(t *testing.T, e *env, label string, answer domain.Payment) domain.Payment {
	t.Helper()
	stored, err := e.st.GetPayment(context.Background(), answer.ID)
	if err != nil {
		t.Fatal(err)
	}
	answer.PaymentToken = "" // the request's, never stored
	if !reflect.DeepEqual(answer, stored) {
		t.Fatalf("%s: answered %+v\nstored %+v", label, answer, stored)
	}
	return stored
}
