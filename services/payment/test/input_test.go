package payment_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bourse-dev/bourse/pkg/auth/authtest"
	paymentv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/payment/v1"
)

// Bad input through the real binary: the code and the field named first in the message, and nothing
// written (no payment listed, no ledger entry, the key still free).
func TestBadInputWritesNothing(t *testing.T) {
	s := startStack(t, sqliteArg(t))
	p := s.startPayment(t, "--processors=instant")
	ctx := context.Background()
	long := strings.Repeat("k", 256)
	three := int32(3)
	for _, c := range []struct {
		name  string
		req   *paymentv1.CreatePaymentRequest
		code  codes.Code
		field string
	}{
		{"zero amount", deposit("alice", 0, "b1"), codes.InvalidArgument, "amount.amount"},
		{"negative amount", deposit("alice", -5, "b1"), codes.InvalidArgument, "amount.amount"},
		{"overflowing amount", deposit("alice", 1<<62, "b1"), codes.InvalidArgument, "amount.amount"},
		{"unknown currency", &paymentv1.CreatePaymentRequest{AccountId: "alice", Amount: &paymentv1.Money{Amount: 5, Currency: "XYZ"},
			Method: paymentv1.PaymentMethod_PAYMENT_METHOD_CARD, PaymentToken: "t", IdempotencyKey: "b1"}, codes.InvalidArgument, "amount.currency"},
		{"wrong exponent", &paymentv1.CreatePaymentRequest{AccountId: "alice", Amount: &paymentv1.Money{Amount: 5, Currency: "JPY", Exponent: &three},
			Method: paymentv1.PaymentMethod_PAYMENT_METHOD_CARD, PaymentToken: "t", IdempotencyKey: "b1"}, codes.InvalidArgument, "amount.exponent"},
		{"no amount", &paymentv1.CreatePaymentRequest{AccountId: "alice", Method: paymentv1.PaymentMethod_PAYMENT_METHOD_CARD, PaymentToken: "t", IdempotencyKey: "b1"},
			codes.InvalidArgument, "amount"},
		{"unknown method", &paymentv1.CreatePaymentRequest{AccountId: "alice", Amount: usd(5), Method: 99, PaymentToken: "t", IdempotencyKey: "b1"},
			codes.InvalidArgument, "method"},
		{"no token", &paymentv1.CreatePaymentRequest{AccountId: "alice", Amount: usd(5), Method: paymentv1.PaymentMethod_PAYMENT_METHOD_CARD, IdempotencyKey: "b1"},
			codes.InvalidArgument, "payment_token"},
		{"no key", deposit("alice", 5, ""), codes.InvalidArgument, "idempotency_key"},
		{"key too long", deposit("alice", 5, long), codes.InvalidArgument, "idempotency_key"},
		{"someone else's account", deposit("bob", 5, "b1"), codes.PermissionDenied, ""},
	} {
		_, err := p.alice.CreatePayment(ctx, c.req)
		if status.Code(err) != c.code || !strings.HasPrefix(status.Convert(err).Message(), c.field) {
			t.Errorf("%s: %v, want %v naming %q", c.name, err, c.code, c.field)
		}
	}
	r, err := p.admin.ListPayments(ctx, &paymentv1.ListPaymentsRequest{})
	if err != nil || len(r.GetPayments()) != 0 {
		t.Fatalf("refused requests wrote payments: %v %v", r, err)
	}
	// The key of a refused request is still free: validation failures are not saved.
	if ok, err := p.alice.CreatePayment(ctx, deposit("alice", 5, "b1")); err != nil || ok.GetReplayed() {
		t.Fatalf("key after refusals: %v %v", ok, err)
	}

	pay, err := p.alice.CreatePayment(ctx, deposit("alice", 500, "b2"))
	if err != nil {
		t.Fatal(err)
	}
	id := pay.GetPayment().GetPaymentId()
	for _, c := range []struct {
		name  string
		call  func() error
		code  codes.Code
		field string
	}{
		{"refund over captured", func() error {
			_, err := p.alice.RefundPayment(ctx, &paymentv1.RefundPaymentRequest{PaymentId: id, Amount: 501, IdempotencyKey: "r1"})
			return err
		}, codes.FailedPrecondition, "amount"},
		{"capture of a captured payment", func() error {
			_, err := p.alice.CapturePayment(ctx, &paymentv1.CapturePaymentRequest{PaymentId: id, IdempotencyKey: "c1"})
			return err
		}, codes.FailedPrecondition, "payment_id"},
		{"bad payment id", func() error {
			_, err := p.alice.GetPayment(ctx, &paymentv1.GetPaymentRequest{PaymentId: "x"})
			return err
		}, codes.InvalidArgument, "payment_id"},
		{"unknown payment", func() error {
			_, err := p.alice.GetPayment(ctx, &paymentv1.GetPaymentRequest{PaymentId: "pay_nope"})
			return err
		}, codes.NotFound, "payment"},
		{"someone else's payment", func() error {
			_, err := p.bob.GetPayment(ctx, &paymentv1.GetPaymentRequest{PaymentId: id})
			return err
		}, codes.NotFound, "payment"},
		{"someone else's capture", func() error {
			_, err := p.bob.CapturePayment(ctx, &paymentv1.CapturePaymentRequest{PaymentId: id, IdempotencyKey: "c2"})
			return err
		}, codes.NotFound, "payment"},
		{"bad page size", func() error {
			_, err := p.alice.ListPayments(ctx, &paymentv1.ListPaymentsRequest{PageSize: 1000})
			return err
		}, codes.InvalidArgument, "page_size"},
		{"forged page token", func() error {
			_, err := p.alice.ListPayments(ctx, &paymentv1.ListPaymentsRequest{PageToken: "garbage!"})
			return err
		}, codes.InvalidArgument, "page_token"},
		{"webhook url", func() error {
			_, err := p.alice.CreateWebhookEndpoint(ctx, &paymentv1.CreateWebhookEndpointRequest{AccountId: "alice", Url: "ftp://x", IdempotencyKey: "w"})
			return err
		}, codes.InvalidArgument, "url"},
		{"payout destination", func() error {
			_, err := p.alice.CreatePayout(ctx, &paymentv1.CreatePayoutRequest{AccountId: "alice", Amount: usd(5), IdempotencyKey: "po"})
			return err
		}, codes.InvalidArgument, "destination"},
	} {
		err := c.call()
		if status.Code(err) != c.code || !strings.HasPrefix(status.Convert(err).Message(), c.field) {
			t.Errorf("%s: %v, want %v naming %q", c.name, err, c.code, c.field)
		}
	}
	if n := len(ledgerTxs(t, p, "")); n != 2 {
		t.Fatalf("%d ledger transactions, want the 2 deposits'", n)
	}
}

// Every payment method × no key, another account, the account named, each service identity and an
// admin, against the real binary.
func TestAccessMatrix(t *testing.T) {
	s := startStack(t, sqliteArg(t))
	p := s.startPayment(t, "--processors=instant")
	conn := dial(t, p.GRPCAddr, "")
	keys := authtest.Keys{Own: aliceKey, Other: bobKey, OwnAccount: "alice", Admin: adminKey, Services: map[string]string{"payment": paymentKey}}
	authtest.Matrix(t, conn, paymentv1.File_bourse_payment_v1_payment_proto.Services().ByName("PaymentService"), map[string]authtest.Who{
		"CreatePayment":         authtest.Own,
		"GetPayment":            authtest.AnyAcct,
		"ListPayments":          authtest.Own,
		"CapturePayment":        authtest.AnyAcct,
		"CancelPayment":         authtest.AnyAcct,
		"RefundPayment":         authtest.AnyAcct,
		"GetRefund":             authtest.AnyAcct,
		"CreatePayout":          authtest.Own,
		"GetPayout":             authtest.AnyAcct,
		"ListEvents":            authtest.Own,
		"CreateWebhookEndpoint": authtest.Own,
		"ListWebhookEndpoints":  authtest.Own,
		"DeleteWebhookEndpoint": authtest.AnyAcct,
		"GetLedgerBalance":      authtest.Admin,
		"ListLedgerEntries":     authtest.Admin,
	}, keys)
}
