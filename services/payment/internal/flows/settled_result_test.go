package flows

import (
	"context"
	"reflect"
	"testing"
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
		stored, err := e.st.GetPayment(ctx, got.ID)
		if err != nil {
			t.Fatal(err)
		}
		got.PaymentToken = "" // the request's, never stored
		if !reflect.DeepEqual(got, stored) {
			t.Fatalf("%s: answered %+v\nstored %+v", token, got, stored)
		}
		again, replayed, err := e.svc.CreatePayment(ctx, "account:alice", "key-"+token, deposit(250, token))
		if err != nil || !replayed || !reflect.DeepEqual(again, stored) {
			t.Fatalf("%s: replay (replayed %v, %v) %+v\nstored %+v", token, replayed, err, again, stored)
		}
	}
}
