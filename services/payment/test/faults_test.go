package payment_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	acquirerv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/acquirer/v1"
	paymentv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/payment/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// Randomized deposits against an acquirer that refuses a quarter of the calls before acting (so the
// payment falls back to the next processor) and loses the answer of another quarter after acting (so
// the payment stays UNKNOWN until the janitor's lookup), with declines by token: once everything has
// settled, no payment was charged twice, a failed one was charged nowhere, a succeeded one exactly
// once, and risk, the ledger and the payments agree. BOURSE_PAYMENT_FAULT_RUNS sets the number of
// deposits (default 200; `make` long runs use 1000).
func TestRandomFaultsNeverChargeTwice(t *testing.T) {
	runs := 200
	if v, err := strconv.Atoi(os.Getenv("BOURSE_PAYMENT_FAULT_RUNS")); err == nil && v > 0 {
		runs = v
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %d deposits", seed, runs)
	s := startStack(t, sqliteArg(t), "--fault-fail-before=0.25", "--fault-lose-answer=0.25", "--fault-kinds=authorize",
		fmt.Sprint("--fault-seed=", seed), "--fault-decline=token=tok_decline,kinds=authorize,code=card_declined")
	// Without circuit breakers: at these fault rates the acquirer's circuit would open and send every
	// deposit to the fallback, leaving the UNKNOWN path untested.
	p := s.startPayment(t, "--processors=acquirer,instant", "--processor-timeout=750ms", "--settle-after=1s", "--circuit-breakers=false")
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 1))
	type req struct {
		key    string
		amount int64
		token  string
	}
	reqs := make([]req, runs)
	for i := range reqs {
		reqs[i] = req{key: fmt.Sprint("fault-", i), amount: 100 + rng.Int64N(10000), token: "tok_visa"}
		if rng.IntN(10) == 0 {
			reqs[i].token = "tok_decline"
		}
	}
	work := make(chan req)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for r := range work {
				in := deposit("alice", r.amount, r.key)
				in.PaymentToken = r.token
				// A client retries what did not answer; every answer is the same payment.
				for try := 0; ; try++ {
					if _, err := p.alice.CreatePayment(ctx, in); err == nil || try == 20 {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		})
	}
	for _, r := range reqs {
		work <- r
	}
	close(work)
	wg.Wait()

	var payments []*paymentv1.Payment
	testenv.WaitFor(t, 90*time.Second, "every payment settled", func() bool {
		payments = payments[:0]
		tok := ""
		for {
			r, err := p.admin.ListPayments(ctx, &paymentv1.ListPaymentsRequest{AccountId: "alice", PageSize: 100, PageToken: tok})
			if err != nil {
				return false
			}
			payments = append(payments, r.GetPayments()...)
			if tok = r.GetNextPageToken(); tok == "" {
				break
			}
		}
		for _, x := range payments {
			if x.GetStatus() == paymentv1.PaymentStatus_PAYMENT_STATUS_PROCESSING {
				return false
			}
		}
		return len(payments) == runs
	})
	approved := map[string]bool{}
	for _, op := range s.operations(t, acquirerv1.OperationKind_OPERATION_KIND_AUTHORIZE) {
		if op.GetOutcome() == acquirerv1.Outcome_OUTCOME_APPROVED {
			approved[op.GetKey()] = true
		}
	}
	var total int64
	succeeded, failed, fellBack := 0, 0, 0
	for _, x := range payments {
		g, err := p.admin.GetPayment(ctx, &paymentv1.GetPaymentRequest{PaymentId: x.GetPaymentId()})
		if err != nil {
			t.Fatal(err)
		}
		charges, captured := 0, 0
		for _, a := range g.GetPayment().GetAttempts() {
			if a.GetProcessor() == "acquirer" && approved[a.GetAttemptId()] {
				charges++
			}
			if a.GetStatus() == paymentv1.AttemptStatus_ATTEMPT_STATUS_CAPTURED {
				captured++
				if a.GetProcessor() == "instant" {
					fellBack++
				}
				if a.GetProcessor() == "acquirer" && !approved[a.GetAttemptId()] {
					t.Errorf("%s: attempt %s captured without a charge at the acquirer", x.GetPaymentId(), a.GetAttemptId())
				}
			}
		}
		switch x.GetStatus() {
		case paymentv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED:
			succeeded++
			total += x.GetAmount().GetAmount()
			if captured != 1 || charges > 1 {
				t.Errorf("%s succeeded with %d captured attempts and %d acquirer charges", x.GetPaymentId(), captured, charges)
			}
		case paymentv1.PaymentStatus_PAYMENT_STATUS_FAILED:
			failed++
			if charges != 0 || captured != 0 {
				t.Errorf("%s failed but was charged %d times (%d captured)", x.GetPaymentId(), charges, captured)
			}
		default:
			t.Errorf("%s ended %v", x.GetPaymentId(), x.GetStatus())
		}
	}
	t.Logf("%d succeeded (%d after falling back), %d failed", succeeded, fellBack, failed)
	if succeeded == 0 || failed == 0 || fellBack == 0 {
		t.Fatalf("%d succeeded, %d fell back, %d failed: the faults did not exercise every path", succeeded, fellBack, failed)
	}
	if bal := checkLedger(t, p, "customer_funds:alice"); bal != -total {
		t.Fatalf("customer funds %d, want %d", bal, -total)
	}
	want := fmt.Sprintf("%d.%02d", total/100, total%100)
	testenv.WaitFor(t, 30*time.Second, "risk credited with every succeeded deposit", func() bool {
		got := s.riskUSD(t, "alice")
		return got == want || got+"0" == want || got+".00" == want
	})
}
