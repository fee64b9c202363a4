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
	claim := func(key, method, object string) { claimInFlight(t, e, key, method, object) }
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

// A record written behind the janitor's place, older than the record the cursor stands on (a clock
// stepped back, or a replica whose clock is behind), is not skipped for ever: once the pages after
// the cursor run out the janitor starts over and completes it. Records created in the same
// nanosecond as the cursor's, ordered before it by key, are reached the same way.
func TestJanitorCompletesStaleKeysWrittenBehindItsCursor(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	claim := func(key, method, object string) { claimInFlight(t, e, key, method, object) }
	start := e.clock()
	for i := range janitorBatch + janitorBatch/2 {
		claim(fmt.Sprintf("waiting-%03d", i), MethodCreatePayout, fmt.Sprint("po_waiting_", i)) // never settles
		e.advance(time.Millisecond)
	}
	e.advance(10 * time.Second) // past SettleAfter
	e.svc.JanitorPass(ctx)      // the cursor now stands on the janitorBatch-th record

	var died []string
	for _, back := range []time.Duration{
		e.clock().Sub(start) + time.Hour,                       // before every record: a clock far behind
		e.clock().Sub(start) - janitorBatch/2*time.Millisecond, // among the records already passed
	} {
		p, _, err := e.svc.CreatePayment(ctx, "account:alice", fmt.Sprint("settled-", len(died)), deposit(500, "tok_ok"))
		if err != nil || p.Status != domain.PaymentSucceeded {
			t.Fatalf("payment %+v %v", p, err)
		}
		e.advance(-back)
		key := fmt.Sprint("died-", len(died))
		claim(key, MethodCreatePayment, p.ID) // the request died after p settled
		e.advance(back)
		died = append(died, key)
	}
	for range 4 {
		e.svc.JanitorPass(ctx)
	}
	for _, key := range died {
		if _, found, err := e.st.FinishedKey(ctx, "account:alice", key, 2*time.Hour); err != nil || !found {
			t.Errorf("record %s, written behind the janitor's cursor, after 4 more passes: found %v, %v; want completed", key, found, err)
		}
	}
}

// claimInFlight writes alice's in-flight record of key for method and object, as a request that then
// died would have left it.
func claimInFlight(t *testing.T, e *env, key, method, object string) {
	t.Helper()
	ctx := context.Background()
	if err := e.st.InTx(ctx, func(tx *store.Tx) error {
		_, _, err := tx.ClaimKey(ctx, idempotency.Record{Caller: "account:alice", Key: key, Method: method, Fingerprint: "f",
			State: idempotency.InFlight, ObjectID: object}, time.Hour)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
