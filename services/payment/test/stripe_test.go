package payment_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paymentv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/payment/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// oneStripeCall asserts that exactly one request went to Stripe since the last check, that
// stripe-mock accepted it (it fits Stripe's API) and that it carried the idempotency key.
func oneStripeCall(t *testing.T, st *testenv.StripeProxy, method, path, key string, form map[string]string) testenv.StripeCall {
	t.Helper()
	calls := st.Take()
	if len(calls) != 1 {
		t.Fatalf("want one request to Stripe (%s %s), got %d: %+v", method, path, len(calls), calls)
	}
	c := calls[0]
	if c.Method != method || c.Path != path || c.Status != 200 {
		t.Fatalf("request %s %s answered %d, want %s %s answered 200", c.Method, c.Path, c.Status, method, path)
	}
	if c.IdempotencyKey != key {
		t.Fatalf("%s %s: Idempotency-Key %q, want %q", method, path, c.IdempotencyKey, key)
	}
	for k, v := range form {
		if got := c.Form.Get(k); got != v {
			t.Fatalf("%s %s: %s = %q, want %q", method, path, k, got, v)
		}
	}
	return c
}

// The payment binary with --processors=stripe against a real stripe-mock (behind stripeState,
// which gives its PaymentIntents a real account's state) and a real risk: an automatic deposit is
// captured and credited, a manual one is captured in part, another is canceled, a refund and a
// payout go through, a last authorization expires uncaptured; every Stripe request is accepted by stripe-mock with the flow's idempotency
// key; payment's API shows each state, risk the net amount, and the ledger sums to zero per
// transaction and in total with the processor receivable at what Stripe holds.
func TestStripeThroughThePaymentBinary(t *testing.T) {
	s := startStack(t, sqliteArg(t))
	sm := testenv.StartStripeMock(t)
	st := stripeState(t, sm.URL)
	keyFile := filepath.Join(t.TempDir(), "stripe.key")
	if err := os.WriteFile(keyFile, []byte("sk_test_bourse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The capture window is short enough to watch an authorization expire, long enough that the
	// captures and the cancel below come well before it.
	p := s.startPayment(t, "--processors=stripe", "--stripe-url="+st.URL, "--stripe-key-file="+keyFile, "--capture-window=10s")
	ctx := context.Background()

	// Automatic capture: one confirmed PaymentIntent, captured, risk credited.
	r, err := p.alice.CreatePayment(ctx, deposit("alice", 10000, "dep-auto"))
	if err != nil {
		t.Fatal(err)
	}
	pay := r.GetPayment()
	if pay.GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED || pay.GetAmountCaptured().GetAmount() != 10000 || len(pay.GetAttempts()) != 1 {
		t.Fatalf("automatic deposit: %v", pay)
	}
	att := pay.GetAttempts()[0]
	if att.GetProcessor() != "stripe" || att.GetStatus() != paymentv1.AttemptStatus_ATTEMPT_STATUS_CAPTURED || !strings.HasPrefix(att.GetProcessorRef(), "pi_") {
		t.Fatalf("automatic deposit's attempt: %v", att)
	}
	oneStripeCall(t, st, "POST", "/v1/payment_intents", att.GetAttemptId(),
		map[string]string{"amount": "10000", "currency": "usd", "capture_method": "automatic", "confirm": "true"})
	testenv.WaitFor(t, 10*time.Second, "risk credited 100", func() bool { return s.riskUSD(t, "alice") == "100" })

	// Manual capture: authorized, then 30.00 of 50.00 captured.
	in := deposit("alice", 5000, "dep-manual")
	in.CaptureMethod = paymentv1.CaptureMethod_CAPTURE_METHOD_MANUAL
	r, err = p.alice.CreatePayment(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	manual := r.GetPayment()
	if manual.GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_REQUIRES_CAPTURE || manual.GetAttempts()[0].GetStatus() != paymentv1.AttemptStatus_ATTEMPT_STATUS_AUTHORIZED {
		t.Fatalf("manual deposit: %v", manual)
	}
	matt, mpi := manual.GetAttempts()[0].GetAttemptId(), "/v1/payment_intents/"+manual.GetAttempts()[0].GetProcessorRef()
	oneStripeCall(t, st, "POST", "/v1/payment_intents", matt, map[string]string{"amount": "5000", "capture_method": "manual"})
	if got := s.riskUSD(t, "alice"); got != "100" {
		t.Fatalf("an authorization credited risk: %s", got)
	}
	cr, err := p.alice.CapturePayment(ctx, &paymentv1.CapturePaymentRequest{PaymentId: manual.GetPaymentId(), AmountToCapture: 3000, IdempotencyKey: "cap-1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := cr.GetPayment(); got.GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED || got.GetAmountCaptured().GetAmount() != 3000 {
		t.Fatalf("capture: %v", got)
	}
	oneStripeCall(t, st, "POST", mpi+"/capture", matt+":capture", map[string]string{"amount_to_capture": "3000"})
	testenv.WaitFor(t, 10*time.Second, "risk credited 30 more", func() bool { return s.riskUSD(t, "alice") == "130" })

	// Cancel: the authorization is canceled at Stripe.
	in.IdempotencyKey = "dep-cancel"
	r, err = p.alice.CreatePayment(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	catt, cpi := r.GetPayment().GetAttempts()[0].GetAttemptId(), "/v1/payment_intents/"+r.GetPayment().GetAttempts()[0].GetProcessorRef()
	st.Take()
	xr, err := p.alice.CancelPayment(ctx, &paymentv1.CancelPaymentRequest{PaymentId: r.GetPayment().GetPaymentId(), IdempotencyKey: "cancel-1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := xr.GetPayment(); got.GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_CANCELED || got.GetAttempts()[0].GetStatus() != paymentv1.AttemptStatus_ATTEMPT_STATUS_VOIDED {
		t.Fatalf("cancel: %v", got)
	}
	oneStripeCall(t, st, "POST", cpi+"/cancel", catt+":void", nil)

	// Refund 20.00 of the first deposit, at Stripe, to its PaymentIntent.
	rr, err := p.alice.RefundPayment(ctx, &paymentv1.RefundPaymentRequest{PaymentId: pay.GetPaymentId(), Amount: 2000, IdempotencyKey: "ref-1"})
	if err != nil {
		t.Fatal(err)
	}
	if rr.GetRefund().GetStatus() != paymentv1.RefundStatus_REFUND_STATUS_SUCCEEDED ||
		rr.GetPayment().GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_PARTIALLY_REFUNDED || rr.GetPayment().GetAmountRefunded().GetAmount() != 2000 {
		t.Fatalf("refund: %v", rr)
	}
	oneStripeCall(t, st, "POST", "/v1/refunds", rr.GetRefund().GetRefundId(),
		map[string]string{"amount": "2000", "payment_intent": att.GetProcessorRef()})
	if got := s.riskUSD(t, "alice"); got != "110" {
		t.Fatalf("risk after the refund: %s, want 110", got)
	}

	// Payout 30.00 through Stripe's Payouts API.
	po, err := p.alice.CreatePayout(ctx, &paymentv1.CreatePayoutRequest{AccountId: "alice", Amount: usd(3000), Destination: "ba_alice", IdempotencyKey: "wd-1"})
	if err != nil {
		t.Fatal(err)
	}
	if x := po.GetPayout(); x.GetStatus() != paymentv1.PayoutStatus_PAYOUT_STATUS_SUCCEEDED || x.GetProcessor() != "stripe" || !strings.HasPrefix(x.GetProcessorRef(), "po_") {
		t.Fatalf("payout: %v", x)
	}
	oneStripeCall(t, st, "POST", "/v1/payouts", po.GetPayout().GetPayoutId(),
		map[string]string{"amount": "3000", "currency": "usd", "destination": "ba_alice"})
	if got := s.riskUSD(t, "alice"); got != "80" {
		t.Fatalf("risk after the payout: %s, want 80", got)
	}

	// An authorization left uncaptured past --capture-window: the janitor cancels it at Stripe
	// with the void key and the payment ends canceled, reason expired; nothing is credited.
	in.IdempotencyKey = "dep-expire"
	r, err = p.alice.CreatePayment(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	expiring := r.GetPayment()
	eatt, epi := expiring.GetAttempts()[0].GetAttemptId(), "/v1/payment_intents/"+expiring.GetAttempts()[0].GetProcessorRef()
	st.Take()
	testenv.WaitFor(t, 40*time.Second, "the authorization expired", func() bool {
		g, err := p.alice.GetPayment(ctx, &paymentv1.GetPaymentRequest{PaymentId: expiring.GetPaymentId()})
		if err != nil {
			t.Fatal(err)
		}
		expiring = g.GetPayment()
		return expiring.GetStatus() == paymentv1.PaymentStatus_PAYMENT_STATUS_CANCELED
	})
	if expiring.GetDeclineReason() != paymentv1.DeclineReason_DECLINE_REASON_EXPIRED || expiring.GetAttempts()[0].GetStatus() != paymentv1.AttemptStatus_ATTEMPT_STATUS_VOIDED ||
		expiring.GetAmountCaptured().GetAmount() != 0 {
		t.Fatalf("expired payment: %v", expiring)
	}
	oneStripeCall(t, st, "POST", epi+"/cancel", eatt+":void", nil)
	if got := s.riskUSD(t, "alice"); got != "80" {
		t.Fatalf("risk after the expiry: %s, want 80", got)
	}

	// Ledger: zero per currency in total (checkLedger) and per transaction; Stripe holds
	// 100 + 30 - 20 - 30, which is what alice was credited net.
	if got := checkLedger(t, p, "processor_receivable:stripe"); got != 8000 {
		t.Fatalf("processor_receivable:stripe %d, want 8000", got)
	}
	if got := checkLedger(t, p, "customer_funds:alice"); got != -8000 {
		t.Fatalf("customer_funds:alice %d, want -8000", got)
	}
	le, err := p.admin.ListLedgerEntries(ctx, &paymentv1.ListLedgerEntriesRequest{PageSize: 500})
	if err != nil {
		t.Fatal(err)
	}
	total := map[string]int64{}
	kinds := map[string]int{}
	for _, tx := range le.GetTransactions() {
		sum := map[string]int64{}
		for _, e := range tx.GetEntries() {
			sum[e.GetCurrency()] += e.GetAmount()
			total[e.GetCurrency()] += e.GetAmount()
		}
		for cur, v := range sum {
			if v != 0 {
				t.Fatalf("ledger transaction %d (%s %s) is off by %d %s", tx.GetTransactionId(), tx.GetKind(), tx.GetReference(), v, cur)
			}
		}
		kinds[tx.GetKind()]++
	}
	if total["USD"] != 0 || len(le.GetTransactions()) == 0 || le.GetHasMore() {
		t.Fatalf("ledger entries total %v over %d transactions (more: %v)", total, len(le.GetTransactions()), le.GetHasMore())
	}
	t.Logf("ledger transactions by kind: %v", kinds)

	// The event log tells the same story, paged one event at a time by cursor.
	var types []string
	var after int64
	for {
		ev, err := p.alice.ListEvents(ctx, &paymentv1.ListEventsRequest{AccountId: "alice", AfterSequence: after, PageSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ev.GetEvents() {
			types, after = append(types, e.GetType()), e.GetSequence()
		}
		if !ev.GetHasMore() {
			break
		}
	}
	joined := " " + strings.Join(types, " ") + " "
	for _, want := range []string{"payment.succeeded", "payment.requires_capture", "payment.canceled", "refund.succeeded", "payout.succeeded"} {
		if !strings.Contains(joined, " "+want+" ") {
			t.Fatalf("events %v lack %s", types, want)
		}
	}
	if n := strings.Count(joined, " payment.succeeded "); n != 2 {
		t.Fatalf("events %v: %d payment.succeeded, want 2", types, n)
	}
	if n := strings.Count(joined, " payment.canceled "); n != 2 {
		t.Fatalf("events %v: %d payment.canceled (a cancel and an expiry), want 2", types, n)
	}
}
