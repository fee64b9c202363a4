package grpcapi_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/bourse-dev/bourse/pkg/auth/authtest"
	"github.com/bourse-dev/bourse/pkg/client"
	acquirerv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/acquirer/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// Every acquirer method × no key, two accounts, each service identity, an admin, against the real
// binary: the processor calls are payment's, the test surface is the operators'.
func TestAccessMatrix(t *testing.T) {
	keys := authtest.Keys{Own: "k-alice", Other: "k-bob", OwnAccount: "alice", Admin: "k-admin",
		Services: map[string]string{"payment": "k-payment", "matching": "k-matching", "risk": "k-risk"}}
	ring := "k-alice=account:alice,k-bob=account:bob,k-admin=admin:ops"
	for name, key := range keys.Services {
		ring += "," + key + "=service:" + name
	}
	p := testenv.StartService(t, testenv.Build(t, testenv.AcquirerPkg), nil, "--register=false", "--api-keys="+ring,
		"--data-dir="+t.TempDir(), "--rate-limit-account=off")
	conn, err := client.Dial(p.GRPCAddr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	payment := authtest.Svc("payment")
	authtest.Matrix(t, conn, acquirerv1.File_bourse_acquirer_v1_acquirer_proto.Services().ByName("AcquirerService"), map[string]authtest.Who{
		"Authorize": payment,
		"Capture":   payment,
		"Void":      payment,
		"Refund":    payment,
		"Payout":    payment,
		"Lookup":    payment,

		"ListOperations": authtest.Admin,
		"SetFaults":      authtest.Admin,
		"GetStats":       authtest.Admin,
	}, keys)
}

// Bad input is InvalidArgument with the field first in the message, and stores nothing.
func TestBadInputNamesTheFieldAndStoresNothing(t *testing.T) {
	a := testenv.StartAcquirer(t, testenv.AcquirerOptions{})
	api := a.Admin
	ctx := context.Background()
	usd := func(n int64) *acquirerv1.Money { return &acquirerv1.Money{Amount: n, Currency: "USD"} }
	okAuth := func() *acquirerv1.AuthorizeRequest {
		return &acquirerv1.AuthorizeRequest{Key: "k", Money: usd(1), Method: "card", PaymentToken: "tok"}
	}
	with := func(f func(r *acquirerv1.AuthorizeRequest)) *acquirerv1.AuthorizeRequest {
		r := okAuth()
		f(r)
		return r
	}
	bigMeta := map[string]string{}
	for i := range 51 {
		bigMeta[strings.Repeat("m", i+1)] = "v"
	}
	cases := []struct {
		field string
		call  func() (proto.Message, error)
	}{
		{"key", func() (proto.Message, error) {
			return api.Authorize(ctx, with(func(r *acquirerv1.AuthorizeRequest) { r.Key = "" }))
		}},
		{"key", func() (proto.Message, error) {
			return api.Authorize(ctx, with(func(r *acquirerv1.AuthorizeRequest) { r.Key = strings.Repeat("k", 256) }))
		}},
		{"money", func() (proto.Message, error) {
			return api.Authorize(ctx, with(func(r *acquirerv1.AuthorizeRequest) { r.Money = nil }))
		}},
		{"money.amount", func() (proto.Message, error) {
			return api.Authorize(ctx, with(func(r *acquirerv1.AuthorizeRequest) { r.Money = usd(0) }))
		}},
		{"money.amount", func() (proto.Message, error) {
			return api.Authorize(ctx, with(func(r *acquirerv1.AuthorizeRequest) { r.Money = usd(-5) }))
		}},
		{"money.amount", func() (proto.Message, error) {
			return api.Authorize(ctx, with(func(r *acquirerv1.AuthorizeRequest) { r.Money = usd(1 << 62) }))
		}},
		{"money.currency", func() (proto.Message, error) {
			return api.Authorize(ctx, with(func(r *acquirerv1.AuthorizeRequest) { r.Money.Currency = "usd" }))
		}},
		{"method", func() (proto.Message, error) {
			return api.Authorize(ctx, with(func(r *acquirerv1.AuthorizeRequest) { r.Method = "" }))
		}},
		{"payment_token", func() (proto.Message, error) {
			return api.Authorize(ctx, with(func(r *acquirerv1.AuthorizeRequest) { r.PaymentToken = "" }))
		}},
		{"metadata", func() (proto.Message, error) {
			return api.Authorize(ctx, with(func(r *acquirerv1.AuthorizeRequest) { r.Metadata = bigMeta }))
		}},
		{"authorize_key", func() (proto.Message, error) {
			return api.Capture(ctx, &acquirerv1.CaptureRequest{Key: "c", Money: usd(1)})
		}},
		{"money.currency", func() (proto.Message, error) {
			return api.Refund(ctx, &acquirerv1.RefundRequest{Key: "r", AuthorizeKey: "k", Money: &acquirerv1.Money{Amount: 1, Currency: "US"}})
		}},
		{"key", func() (proto.Message, error) { return api.Void(ctx, &acquirerv1.VoidRequest{AuthorizeKey: "k"}) }},
		{"destination", func() (proto.Message, error) {
			return api.Payout(ctx, &acquirerv1.PayoutRequest{Key: "p", Money: usd(1)})
		}},
		{"kind", func() (proto.Message, error) { return api.Lookup(ctx, &acquirerv1.LookupRequest{Key: "k"}) }},
		{"page_size", func() (proto.Message, error) {
			return api.ListOperations(ctx, &acquirerv1.ListOperationsRequest{PageSize: 1001})
		}},
		{"page_token", func() (proto.Message, error) {
			return api.ListOperations(ctx, &acquirerv1.ListOperationsRequest{PageToken: "x"})
		}},
		{"faults.fail_before_probability", func() (proto.Message, error) {
			return api.SetFaults(ctx, &acquirerv1.SetFaultsRequest{Faults: &acquirerv1.Faults{FailBeforeProbability: 2}})
		}},
		{"faults.latency", func() (proto.Message, error) {
			return api.SetFaults(ctx, &acquirerv1.SetFaultsRequest{Faults: &acquirerv1.Faults{Latency: durationpb.New(-1)}})
		}},
		{"faults.decline_rules[0].max_amount", func() (proto.Message, error) {
			return api.SetFaults(ctx, &acquirerv1.SetFaultsRequest{Faults: &acquirerv1.Faults{
				DeclineRules: []*acquirerv1.DeclineRule{{MinAmount: 10, MaxAmount: 5}}}})
		}},
	}
	for _, c := range cases {
		_, err := c.call()
		st := status.Convert(err)
		if st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), c.field+":") {
			t.Errorf("want InvalidArgument naming %s, got %v", c.field, err)
		}
	}
	ops, err := api.ListOperations(ctx, &acquirerv1.ListOperationsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ops.GetOperations()) != 0 {
		t.Fatalf("bad input stored %v", ops.GetOperations())
	}
	// The refused SetFaults left the faults alone: the next call acts normally.
	if r, err := api.Authorize(ctx, okAuth()); err != nil || r.GetOperation().GetOutcome() != acquirerv1.Outcome_OUTCOME_APPROVED {
		t.Fatalf("authorize after the refused faults: %v %v", r, err)
	}
}
