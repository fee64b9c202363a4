package payment_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	acquirerv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/acquirer/v1"
	paymentv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/payment/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

func sqliteArg(t *testing.T) string { return "--data-dir=" + filepath.Join(t.TempDir(), "payment") }

// eachStore runs a scenario with payment on SQLite and on PostgreSQL.
func eachStore(t *testing.T, fn func(t *testing.T, dbArg string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, sqliteArg(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, "--database-url="+testenv.StartPostgres(t)) })
}

// 100 concurrent CreatePayment with one key: one attempt at the acquirer, one ledger transaction, one
// risk credit; every answer is the payment or a retryable Aborted; the same key with another amount
// is InvalidArgument naming idempotency_key.
func TestConcurrentSameKeyChargesOnce(t *testing.T) {
	eachStore(t, func(t *testing.T, dbArg string) {
		s := startStack(t, dbArg)
		p := s.startPayment(t)
		ctx := context.Background()
		var mu sync.Mutex
		ids := map[string]int{}
		aborted := 0
		var wg sync.WaitGroup
		for range 100 {
			wg.Go(func() {
				r, err := p.alice.CreatePayment(ctx, deposit("alice", 4200, "same-key"))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case status.Code(err) == codes.Aborted && strings.Contains(status.Convert(err).Message(), "idempotency_key_in_use"):
					aborted++
				case err != nil:
					t.Errorf("CreatePayment: %v", err)
				default:
					ids[r.GetPayment().GetPaymentId()]++
				}
			})
		}
		wg.Wait()
		if len(ids) != 1 {
			t.Fatalf("payments answered: %v (%d aborted); want exactly one id", ids, aborted)
		}
		var id string
		for id = range ids {
		}
		if n := len(s.operations(t, acquirerv1.OperationKind_OPERATION_KIND_AUTHORIZE)); n != 1 {
			t.Fatalf("%d authorizations at the acquirer, want 1", n)
		}
		if n := len(ledgerTxs(t, p, id)); n != 1 {
			t.Fatalf("%d ledger transactions for %s, want 1", n, id)
		}
		testenv.WaitFor(t, 10*time.Second, "risk credited", func() bool { return s.riskUSD(t, "alice") == "42" })
		time.Sleep(300 * time.Millisecond) // a second credit, if there were one, would have landed by now
		if got := s.riskUSD(t, "alice"); got != "42" {
			t.Fatalf("risk balance %s, want 42 (one credit)", got)
		}
		_, err := p.alice.CreatePayment(ctx, deposit("alice", 4300, "same-key"))
		if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), "idempotency_key") {
			t.Fatalf("same key, other amount: %v", err)
		}
		r, err := p.alice.CreatePayment(ctx, deposit("alice", 4200, "same-key"))
		if err != nil || !r.GetReplayed() || r.GetPayment().GetPaymentId() != id {
			t.Fatalf("replay: %v %v", r, err)
		}
		if checkLedger(t, p, "customer_funds:alice") != -4200 {
			t.Fatal("customer funds do not match the one deposit")
		}
	})
}

// SIGKILL payment after the acquirer charged and before payment committed the outcome; after a
// restart the janitor settles it: one charge, one credit, the ledger at zero, and the client's retry
// gets the payment.
func TestCrashBetweenChargeAndCommit(t *testing.T) {
	eachStore(t, func(t *testing.T, dbArg string) {
		s := startStack(t, dbArg, "--fault-answer-delay=30s", "--fault-kinds=authorize")
		dataArg := s.dbArg
		p := s.startPayment(t, "--processor-timeout=5s", "--settle-after=7s") // the call outlives the kill; its lookup is due 7 s after it began
		ctx := context.Background()
		go p.alice.CreatePayment(ctx, deposit("alice", 1500, "crash-key")) //nolint:errcheck // the process dies under it
		testenv.WaitFor(t, 20*time.Second, "the acquirer to charge", func() bool {
			return len(s.operations(t, acquirerv1.OperationKind_OPERATION_KIND_AUTHORIZE)) == 1
		})
		kill(t, p.Process)
		// No more delays: the janitor's lookup (never faulted) and any new call answer at once.
		if _, err := s.acqAdmin.SetFaults(ctx, &acquirerv1.SetFaultsRequest{Faults: &acquirerv1.Faults{}}); err != nil {
			t.Fatal(err)
		}
		s.dbArg = dataArg
		p = s.startPayment(t, "--processor-timeout=1s", "--settle-after=2s")
		var id string
		testenv.WaitFor(t, 30*time.Second, "the janitor to settle the payment", func() bool {
			r, err := p.admin.ListPayments(ctx, &paymentv1.ListPaymentsRequest{AccountId: "alice"})
			if err != nil || len(r.GetPayments()) != 1 {
				return false
			}
			id = r.GetPayments()[0].GetPaymentId()
			return r.GetPayments()[0].GetStatus() == paymentv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED
		})
		testenv.WaitFor(t, 10*time.Second, "risk credited", func() bool { return s.riskUSD(t, "alice") == "15" })
		if n := len(s.operations(t, acquirerv1.OperationKind_OPERATION_KIND_AUTHORIZE)); n != 1 {
			t.Fatalf("%d charges at the acquirer, want 1", n)
		}
		if checkLedger(t, p, "customer_funds:alice") != -1500 {
			t.Fatal("ledger does not show the one deposit")
		}
		testenv.WaitFor(t, 10*time.Second, "the retry to get the settled payment", func() bool {
			r, err := p.alice.CreatePayment(ctx, deposit("alice", 1500, "crash-key"))
			return err == nil && r.GetReplayed() && r.GetPayment().GetPaymentId() == id
		})
		if got := s.riskUSD(t, "alice"); got != "15" {
			t.Fatalf("risk %s after the retry, want 15", got)
		}
	})
}

// Partial and multiple refunds up to the captured amount, concurrent ones included; each debits risk
// once; over-refunds are FailedPrecondition naming amount (payment_id once it is all refunded). A
// refund answered still in progress (its request stalled past --settle-after and the janitor
// finished it) counts once it has settled.
func TestRefunds(t *testing.T) {
	eachStore(t, func(t *testing.T, dbArg string) {
		s := startStack(t, dbArg)
		p := s.startPayment(t)
		ctx := context.Background()
		r, err := p.alice.CreatePayment(ctx, deposit("alice", 10000, "dep"))
		if err != nil {
			t.Fatal(err)
		}
		id := r.GetPayment().GetPaymentId()
		testenv.WaitFor(t, 10*time.Second, "risk credited", func() bool { return s.riskUSD(t, "alice") == "100" })
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, refused := 0, 0
		var open []string // refunds answered still in progress
		for i := range 12 {
			wg.Go(func() {
				rr, err := p.alice.RefundPayment(ctx, &paymentv1.RefundPaymentRequest{PaymentId: id, Amount: 1000, IdempotencyKey: fmt.Sprint("r", i)})
				mu.Lock()
				defer mu.Unlock()
				switch st := rr.GetRefund().GetStatus(); {
				case err == nil && st == paymentv1.RefundStatus_REFUND_STATUS_SUCCEEDED:
					ok++
				case err == nil && refundInProgress(st):
					// A request that stalled past --settle-after (a loaded machine) leaves its refund
					// to the janitor and answers it as it is, like a processor that has not answered
					// yet: accepted, settled later.
					open = append(open, rr.GetRefund().GetRefundId())
				case refusedOverCapture(err):
					refused++
				default:
					t.Errorf("refund: %v %v", rr, err)
				}
			})
		}
		wg.Wait()
		// Once settled, the refunds accepted in progress must have succeeded like the others.
		for _, rid := range open {
			var last *paymentv1.Refund
			testenv.WaitFor(t, 30*time.Second, "refund "+rid+" to settle", func() bool {
				g, err := p.alice.GetRefund(ctx, &paymentv1.GetRefundRequest{RefundId: rid})
				if err != nil {
					t.Fatalf("GetRefund %s: %v", rid, err)
				}
				last = g.GetRefund()
				return !refundInProgress(last.GetStatus())
			})
			if last.GetStatus() == paymentv1.RefundStatus_REFUND_STATUS_SUCCEEDED {
				ok++
			} else {
				t.Errorf("refund answered in progress settled as %v", last)
			}
		}
		if len(open) > 0 {
			t.Logf("%d refunds were answered in progress and settled by the janitor", len(open))
		}
		if ok != 10 || refused != 2 {
			t.Fatalf("%d refunds succeeded, %d refused; want 10 and 2", ok, refused)
		}
		g, err := p.alice.GetPayment(ctx, &paymentv1.GetPaymentRequest{PaymentId: id})
		if err != nil || g.GetPayment().GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_REFUNDED || g.GetPayment().GetAmountRefunded().GetAmount() != 10000 {
			t.Fatalf("payment after refunds: %v %v", g, err)
		}
		if got := s.riskUSD(t, "alice"); got != "0" {
			t.Fatalf("risk %s after refunding everything, want 0", got)
		}
		if n := len(s.operations(t, acquirerv1.OperationKind_OPERATION_KIND_REFUND)); n != 10 {
			t.Fatalf("%d refunds at the acquirer, want 10", n)
		}
		// Idempotent: the same key replays the first refund.
		again, err := p.alice.RefundPayment(ctx, &paymentv1.RefundPaymentRequest{PaymentId: id, Amount: 1000, IdempotencyKey: "r0"})
		if err != nil && status.Code(err) != codes.FailedPrecondition {
			t.Fatal(err)
		}
		if err == nil && !again.GetReplayed() {
			t.Fatal("refund with a used key was not a replay")
		}
		// Bob cannot see alice's payment at all.
		if _, err := p.bob.RefundPayment(ctx, &paymentv1.RefundPaymentRequest{PaymentId: id, IdempotencyKey: "b"}); status.Code(err) != codes.NotFound {
			t.Fatalf("bob refunding alice's payment: %v, want NotFound", err)
		}
		checkLedger(t, p, "")
	})
}

// refusedOverCapture reports whether err refuses a refund for exceeding what is left of the capture:
// FailedPrecondition naming amount, or naming payment_id when the others have refunded it all.
func refusedOverCapture(err error) bool {
	msg := status.Convert(err).Message()
	return status.Code(err) == codes.FailedPrecondition && (strings.HasPrefix(msg, "amount") ||
		msg == "payment_id: payment is refunded: only a captured payment can be refunded")
}

// refundInProgress reports whether a refund status is not final: the janitor settles it.
func refundInProgress(s paymentv1.RefundStatus) bool {
	switch s {
	case paymentv1.RefundStatus_REFUND_STATUS_PENDING, paymentv1.RefundStatus_REFUND_STATUS_PROCESSING,
		paymentv1.RefundStatus_REFUND_STATUS_UNKNOWN, paymentv1.RefundStatus_REFUND_STATUS_REVERSING:
		return true
	}
	return false
}

// The payout saga: risk is debited first; a processor decline credits it back; risk's refusal moves
// nothing; a crash between the acquirer's payout and payment's commit resumes to one payout.
func TestPayoutSaga(t *testing.T) {
	eachStore(t, func(t *testing.T, dbArg string) {
		s := startStack(t, dbArg, "--fault-decline=token=ba_bad,kinds=payout,code=account_closed")
		dataArg := s.dbArg
		p := s.startPayment(t)
		ctx := context.Background()
		if _, err := p.alice.CreatePayment(ctx, deposit("alice", 10000, "dep")); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, 10*time.Second, "risk credited", func() bool { return s.riskUSD(t, "alice") == "100" })
		payout := func(key, dest string, amount int64) *paymentv1.Payout {
			t.Helper()
			r, err := p.alice.CreatePayout(ctx, &paymentv1.CreatePayoutRequest{AccountId: "alice", Amount: usd(amount), Destination: dest, IdempotencyKey: key})
			if err != nil {
				t.Fatal(err)
			}
			return r.GetPayout()
		}
		if x := payout("p1", "ba_ok", 3000); x.GetStatus() != paymentv1.PayoutStatus_PAYOUT_STATUS_SUCCEEDED || s.riskUSD(t, "alice") != "70" {
			t.Fatalf("payout: %v, risk %s", x, s.riskUSD(t, "alice"))
		}
		if x := payout("p2", "ba_bad", 2000); x.GetStatus() != paymentv1.PayoutStatus_PAYOUT_STATUS_FAILED || x.GetDeclineCode() != "account_closed" || s.riskUSD(t, "alice") != "70" {
			t.Fatalf("declined payout: %v, risk %s", x, s.riskUSD(t, "alice"))
		}
		if x := payout("p3", "ba_ok", 1_000_000); x.GetStatus() != paymentv1.PayoutStatus_PAYOUT_STATUS_FAILED ||
			x.GetDeclineReason() != paymentv1.DeclineReason_DECLINE_REASON_RISK_REJECTED || s.riskUSD(t, "alice") != "70" {
			t.Fatalf("payout over the balance: %v, risk %s", x, s.riskUSD(t, "alice"))
		}
		// Crash with the acquirer holding its answer after paying out.
		if _, err := s.acqAdmin.SetFaults(ctx, &acquirerv1.SetFaultsRequest{Faults: &acquirerv1.Faults{AnswerDelay: durationpb.New(30 * time.Second),
			Kinds: []acquirerv1.OperationKind{acquirerv1.OperationKind_OPERATION_KIND_PAYOUT}}}); err != nil {
			t.Fatal(err)
		}
		before := len(s.operations(t, acquirerv1.OperationKind_OPERATION_KIND_PAYOUT))
		go p.alice.CreatePayout(ctx, &paymentv1.CreatePayoutRequest{AccountId: "alice", Amount: usd(500), Destination: "ba_ok", IdempotencyKey: "p4"}) //nolint:errcheck // dies under it
		testenv.WaitFor(t, 20*time.Second, "the acquirer to pay out", func() bool {
			return len(s.operations(t, acquirerv1.OperationKind_OPERATION_KIND_PAYOUT)) == before+1
		})
		kill(t, p.Process)
		if _, err := s.acqAdmin.SetFaults(ctx, &acquirerv1.SetFaultsRequest{Faults: &acquirerv1.Faults{}}); err != nil {
			t.Fatal(err)
		}
		s.dbArg = dataArg
		p = s.startPayment(t, "--processor-timeout=1s")
		testenv.WaitFor(t, 30*time.Second, "the payout to finish", func() bool {
			r, err := p.alice.CreatePayout(ctx, &paymentv1.CreatePayoutRequest{AccountId: "alice", Amount: usd(500), Destination: "ba_ok", IdempotencyKey: "p4"})
			return err == nil && r.GetPayout().GetStatus() == paymentv1.PayoutStatus_PAYOUT_STATUS_SUCCEEDED
		})
		if got := s.riskUSD(t, "alice"); got != "65" {
			t.Fatalf("risk %s, want 65 (one debit of 5)", got)
		}
		if n := len(s.operations(t, acquirerv1.OperationKind_OPERATION_KIND_PAYOUT)); n != before+1 {
			t.Fatalf("%d payouts at the acquirer, want %d", n, before+1)
		}
		checkLedger(t, p, "")
	})
}
