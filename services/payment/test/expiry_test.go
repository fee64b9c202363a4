package payment_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	acquirerv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/acquirer/v1"
	paymentv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/payment/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// Two payment replicas on one PostgreSQL, both janitors expiring authorizations, and captures sent
// to either replica around the moment each authorization expires: every payment ends either
// captured (one capture at the acquirer, no void, credited) or canceled as expired (one void, no
// capture), and the capture's answer says which.
func TestCaptureRacesExpiryOnTwoReplicas(t *testing.T) {
	const n, amount = 24, 500
	const window = 4 * time.Second
	s := startStack(t, "--database-url="+testenv.StartPostgres(t))
	args := []string{"--capture-window=" + window.String()}
	replicas := []*paymentProc{s.startPayment(t, args...), s.startPayment(t, args...)}
	ctx := context.Background()

	type auth struct {
		id, attempt string
		created     time.Time
	}
	var auths []auth
	for i := range n {
		in := deposit("alice", amount, fmt.Sprint("exp-", i))
		in.CaptureMethod = paymentv1.CaptureMethod_CAPTURE_METHOD_MANUAL
		r, err := replicas[i%2].alice.CreatePayment(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if r.GetPayment().GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_REQUIRES_CAPTURE {
			t.Fatalf("authorization %d: %v", i, r.GetPayment())
		}
		auths = append(auths, auth{r.GetPayment().GetPaymentId(), r.GetPayment().GetAttempts()[0].GetAttemptId(), time.Now()})
	}

	// Each capture goes out between 300 ms before and 500 ms after its authorization's expiry
	// (the janitors look every 200 ms).
	answers := make([]error, n)
	var wg sync.WaitGroup
	for i, a := range auths {
		at := a.created.Add(window - 300*time.Millisecond + rand.N(800*time.Millisecond))
		wg.Go(func() {
			time.Sleep(time.Until(at))
			_, answers[i] = replicas[rand.N(2)].alice.CapturePayment(ctx, &paymentv1.CapturePaymentRequest{PaymentId: a.id, IdempotencyKey: "cap-" + a.id})
		})
	}
	wg.Wait()

	final := map[string]*paymentv1.Payment{}
	testenv.WaitFor(t, 30*time.Second, "every payment captured or canceled", func() bool {
		for _, a := range auths {
			r, err := replicas[0].alice.GetPayment(ctx, &paymentv1.GetPaymentRequest{PaymentId: a.id})
			if err != nil {
				t.Fatal(err)
			}
			if st := r.GetPayment().GetStatus(); st != paymentv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED && st != paymentv1.PaymentStatus_PAYMENT_STATUS_CANCELED {
				return false
			}
			final[a.id] = r.GetPayment()
		}
		return true
	})

	approved := func(kind acquirerv1.OperationKind) map[string]int {
		out := map[string]int{}
		for _, op := range s.operations(t, kind) {
			if op.GetOutcome() == acquirerv1.Outcome_OUTCOME_APPROVED {
				out[op.GetAuthorizeKey()]++
			}
		}
		return out
	}
	captures, voids := approved(acquirerv1.OperationKind_OPERATION_KIND_CAPTURE), approved(acquirerv1.OperationKind_OPERATION_KIND_VOID)
	succeeded := 0
	for i, a := range auths {
		p := final[a.id]
		switch p.GetStatus() {
		case paymentv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED:
			succeeded++
			if answers[i] != nil || captures[a.attempt] != 1 || voids[a.attempt] != 0 || p.GetAmountCaptured().GetAmount() != amount {
				t.Errorf("captured %s: capture answered %v; acquirer %d captures, %d voids", a.id, answers[i], captures[a.attempt], voids[a.attempt])
			}
		default:
			if status.Code(answers[i]) != codes.FailedPrecondition || captures[a.attempt] != 0 || voids[a.attempt] != 1 ||
				p.GetDeclineReason() != paymentv1.DeclineReason_DECLINE_REASON_EXPIRED {
				t.Errorf("canceled %s (%v): capture answered %v; acquirer %d captures, %d voids", a.id, p.GetDeclineReason(), answers[i], captures[a.attempt], voids[a.attempt])
			}
		}
	}
	want := fmt.Sprint(succeeded * amount / 100)
	testenv.WaitFor(t, 10*time.Second, "risk credited "+want, func() bool { return s.riskUSD(t, "alice") == want })
	if got := checkLedger(t, replicas[1], "processor_receivable:acquirer"); got != int64(succeeded*amount) {
		t.Fatalf("processor_receivable:acquirer %d, want %d", got, succeeded*amount)
	}
	t.Logf("%d captured, %d expired", succeeded, n-succeeded)
}
