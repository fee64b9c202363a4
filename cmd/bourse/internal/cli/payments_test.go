package cli

import (
	"context"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"

	paymentv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/payment/v1"
)

// fakePayment answers refunds and payouts with the statuses the real flows return synchronously:
// a refund risk or the processor refused comes back FAILED or REVERSING, a refused payout REVERSING
// (credited back by the saga) or FAILED.
type fakePayment struct {
	paymentv1.UnimplementedPaymentServiceServer
	refund paymentv1.RefundStatus
	payout paymentv1.PayoutStatus
}

func (f *fakePayment) RefundPayment(_ context.Context, r *paymentv1.RefundPaymentRequest) (*paymentv1.RefundPaymentResponse, error) {
	return &paymentv1.RefundPaymentResponse{
		Refund:  &paymentv1.Refund{RefundId: "re_1", PaymentId: r.GetPaymentId(), Status: f.refund, DeclineCode: "insufficient_funds"},
		Payment: &paymentv1.Payment{PaymentId: r.GetPaymentId(), Status: paymentv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED},
	}, nil
}

func (f *fakePayment) CreatePayout(_ context.Context, r *paymentv1.CreatePayoutRequest) (*paymentv1.CreatePayoutResponse, error) {
	return &paymentv1.CreatePayoutResponse{Payout: &paymentv1.Payout{PayoutId: "po_1", AccountId: r.GetAccountId(), Amount: r.GetAmount(),
		Status: f.payout, DeclineReason: paymentv1.DeclineReason_DECLINE_REASON_DO_NOT_HONOR}}, nil
}

func servePayment(t *testing.T, f *fakePayment) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	paymentv1.RegisterPaymentServiceServer(srv, f)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// A refund or payout the flows refused is a failing exit, as a declined deposit is: a script must not
// take "refund FAILED" for money given back.
func TestRefundAndPayoutOutcomesAreExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		refund paymentv1.RefundStatus
		payout paymentv1.PayoutStatus
		want   int
	}{
		{"refund failed", paymentv1.RefundStatus_REFUND_STATUS_FAILED, 0, ExitFailed},
		{"refund reversing", paymentv1.RefundStatus_REFUND_STATUS_REVERSING, 0, ExitFailed},
		{"refund succeeded", paymentv1.RefundStatus_REFUND_STATUS_SUCCEEDED, 0, ExitOK},
		{"refund unknown", paymentv1.RefundStatus_REFUND_STATUS_UNKNOWN, 0, ExitOK},
		{"payout reversing", 0, paymentv1.PayoutStatus_PAYOUT_STATUS_REVERSING, ExitFailed},
		{"payout failed", 0, paymentv1.PayoutStatus_PAYOUT_STATUS_FAILED, ExitFailed},
		{"payout succeeded", 0, paymentv1.PayoutStatus_PAYOUT_STATUS_SUCCEEDED, ExitOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := servePayment(t, &fakePayment{refund: tc.refund, payout: tc.payout})
			args := []string{"--addr", "payment=" + addr, "payments", "refund", "pay_1"}
			if tc.payout != 0 {
				args = []string{"--addr", "payment=" + addr, "withdraw", "10", "USD", "--account", "a", "--destination", "ba_a"}
			}
			var out, errOut strings.Builder
			if code := Main(args, &out, &errOut); code != tc.want {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.want, out.String(), errOut.String())
			}
		})
	}
}

type fakeEndpoints struct {
	fakePayment
	keys []string
}

func (f *fakeEndpoints) CreateWebhookEndpoint(_ context.Context, r *paymentv1.CreateWebhookEndpointRequest) (*paymentv1.CreateWebhookEndpointResponse, error) {
	f.keys = append(f.keys, r.GetIdempotencyKey())
	return &paymentv1.CreateWebhookEndpointResponse{Endpoint: &paymentv1.WebhookEndpoint{EndpointId: "we_1", Url: r.GetUrl()}, Secret: "whsec_x"}, nil
}

// webhooks create can be retried safely, as deposit and withdraw can: the key is the flag's, or a new
// one printed to retry with (a retry with a fresh key makes a second endpoint, whose secret the first
// answer never showed).
func TestWebhooksCreateTakesAnIdempotencyKey(t *testing.T) {
	f := &fakeEndpoints{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	paymentv1.RegisterPaymentServiceServer(srv, f)
	go srv.Serve(lis)
	defer srv.Stop()
	args := []string{"--addr", "payment=" + lis.Addr().String(), "webhooks", "create", "http://127.0.0.1:9/hook", "--account", "a"}
	for range 2 {
		var out, errOut strings.Builder
		if code := Main(append(args, "--idempotency-key", "wh-1"), &out, &errOut); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
	}
	var out, errOut strings.Builder
	if code := Main(args, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if len(f.keys) != 3 || f.keys[0] != "wh-1" || f.keys[1] != "wh-1" || f.keys[2] == "" || f.keys[2] == "wh-1" {
		t.Errorf("keys sent: %q", f.keys)
	}
	if !strings.Contains(errOut.String(), "idempotency key "+f.keys[2]) {
		t.Errorf("the generated key is not printed: %q", errOut.String())
	}
}

type fakeCapture struct {
	fakePayment
	captured int64
	key      string
}

func (f *fakeCapture) GetPayment(_ context.Context, r *paymentv1.GetPaymentRequest) (*paymentv1.GetPaymentResponse, error) {
	return &paymentv1.GetPaymentResponse{Payment: &paymentv1.Payment{PaymentId: r.GetPaymentId(),
		Amount: &paymentv1.Money{Amount: 5000, Currency: "KWD"}, Status: paymentv1.PaymentStatus_PAYMENT_STATUS_REQUIRES_CAPTURE}}, nil
}

func (f *fakeCapture) CapturePayment(_ context.Context, r *paymentv1.CapturePaymentRequest) (*paymentv1.CapturePaymentResponse, error) {
	f.captured, f.key = r.GetAmountToCapture(), r.GetIdempotencyKey()
	return &paymentv1.CapturePaymentResponse{Payment: &paymentv1.Payment{PaymentId: r.GetPaymentId(),
		Amount: &paymentv1.Money{Amount: 5000, Currency: "KWD"}, Status: paymentv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED}}, nil
}

// capture reads AMOUNT in the payment's own currency (KWD has three decimals) and sends minor units.
func TestCaptureConvertsTheAmountInThePaymentsCurrency(t *testing.T) {
	f := &fakeCapture{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	paymentv1.RegisterPaymentServiceServer(srv, f)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	var out, errOut strings.Builder
	code := Main([]string{"--addr", "payment=" + lis.Addr().String(), "payments", "capture", "pay_1", "3.25", "--idempotency-key", "cap-7"}, &out, &errOut)
	if code != ExitOK || f.captured != 3250 || f.key != "cap-7" {
		t.Fatalf("exit %d, captured %d with key %q; want 0, 3250 and cap-7 (%s)", code, f.captured, f.key, errOut.String())
	}
	if code := Main([]string{"--addr", "payment=" + lis.Addr().String(), "payments", "capture", "pay_1", "3.2505"}, &out, &errOut); code != ExitUsage {
		t.Errorf("an amount finer than KWD's thousandths: exit %d, want %d", code, ExitUsage)
	}
}
