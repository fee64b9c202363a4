package flows

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/idempotency"
	"github.com/bourse-dev/bourse/services/payment/internal/store"
)

// A record of a request that died is completed by the janitor once its object has settled, even
// behind more records than one pass looks at whose objects have not (payouts waiting on a saga):
// each pass goes on after the last one's records instead of looking at the same ones again.
func TestJanitorCompletesStaleKeysBehindUnsettledOnes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p, _, err := e.svc.CreatePayment(ctx, "account:alice", "settled", deposit(500, "tok_ok"))
	if err != nil || p.Status != domain.PaymentSucceeded {
		t.Fatalf("payment %+v %v", p, err)
	}
	claim := func(key, method, object string) {
		t.Helper()
		if err := e.st.InTx(ctx, func(tx *store.Tx) error {
			_, _, err := tx.ClaimKey(ctx, idempotency.Record{Caller: "account:alice", Key: key, Method: method, Fingerprint: "f",
				State: idempotency.InFlight, ObjectID: object}, time.Hour)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range janitorBatch + janitorBatch/2 {
		claim(fmt.Sprint("waiting-", i), MethodCreatePayout, fmt.Sprint("po_waiting_", i)) // no such payout: never settled
		e.advance(time.Millisecond)
	}
	// The request for p died after p settled and before its record was completed.
	claim("died", MethodCreatePayment, p.ID)
	e.advance(10 * time.Second) // past SettleAfter

	for range 3 {
		e.svc.JanitorPass(ctx)
	}
	rec, found, err := e.st.FinishedKey(ctx, "account:alice", "died", time.Hour)
	if err != nil || !found || rec.ObjectID != p.ID {
		t.Fatalf("the dead request's record after 3 passes: found %v, %+v, %v; want completed with the payment", found, rec, err)
	}
	if _, found, _ := e.st.FinishedKey(ctx, "account:alice", "waiting-0", time.Hour); found {
		t.Fatal("a record whose payout does not exist was completed")
	}
}
