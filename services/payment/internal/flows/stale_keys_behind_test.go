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

// A record written behind the janitor's place, older than the record the cursor stands on (a clock
// stepped back, or a replica whose clock is behind), is not skipped for ever: once the pages after
// the cursor run out the janitor starts over and completes it. Records created in the same
// nanosecond as the cursor's, ordered before it by key, are reached the same way.
func TestJanitorCompletesStaleKeysWrittenBehindItsCursor(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
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
