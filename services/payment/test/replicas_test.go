package payment_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	acquirerv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/acquirer/v1"
	paymentv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/payment/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// Two payment processes on one PostgreSQL database take concurrent requests with the same keys: the
// unique constraint decides, so each key charges once, posts once and credits risk once, with both
// replicas' janitors and outbox dispatchers running.
func TestTwoReplicasOnePostgres(t *testing.T) {
	s := startStack(t, "--database-url="+testenv.StartPostgres(t))
	a := s.startPayment(t)
	b := s.startPayment(t)
	ctx := context.Background()
	const keys, perKey = 10, 10
	var mu sync.Mutex
	ids := map[string]map[string]bool{}
	var wg sync.WaitGroup
	for k := range keys {
		key := fmt.Sprint("replica-key-", k)
		ids[key] = map[string]bool{}
		for i := range perKey {
			c := a.alice
			if i%2 == 1 {
				c = b.alice
			}
			wg.Go(func() {
				r, err := c.CreatePayment(ctx, deposit("alice", 100, key))
				if status.Code(err) == codes.Aborted && strings.Contains(status.Convert(err).Message(), "idempotency_key_in_use") {
					return
				}
				if err != nil {
					t.Errorf("%s: %v", key, err)
					return
				}
				mu.Lock()
				ids[key][r.GetPayment().GetPaymentId()] = true
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	for key, set := range ids {
		if len(set) != 1 {
			t.Errorf("%s answered with %d payment ids, want 1", key, len(set))
		}
	}
	if n := len(s.operations(t, acquirerv1.OperationKind_OPERATION_KIND_AUTHORIZE)); n != keys {
		t.Fatalf("%d authorizations at the acquirer, want %d", n, keys)
	}
	testenv.WaitFor(t, 15*time.Second, "risk credited for every key", func() bool { return s.riskUSD(t, "alice") == "10" })
	time.Sleep(500 * time.Millisecond)
	if got := s.riskUSD(t, "alice"); got != "10" {
		t.Fatalf("risk %s, want 10 (one credit per key)", got)
	}
	// Both replicas read the same state.
	for _, p := range []*paymentProc{a, b} {
		if bal := checkLedger(t, p, "customer_funds:alice"); bal != -keys*100 {
			t.Fatalf("customer funds %d, want %d", bal, -keys*100)
		}
		r, err := p.admin.ListPayments(ctx, &paymentv1.ListPaymentsRequest{AccountId: "alice", PageSize: 100})
		if err != nil || len(r.GetPayments()) != keys {
			t.Fatalf("ListPayments: %d, %v", len(r.GetPayments()), err)
		}
	}
}
