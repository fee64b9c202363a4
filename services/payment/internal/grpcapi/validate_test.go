package grpcapi

import (
	"errors"
	"strings"
	"testing"

	"github.com/bourse-dev/bourse/pkg/auth/authtest"
	"github.com/bourse-dev/bourse/pkg/errs"
	paymentv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/payment/v1"
	"github.com/bourse-dev/bourse/services/payment/internal/domain"
)

func TestPolicyClassifiesEveryMethod(t *testing.T) {
	authtest.RequireClassified(t, Policy, &paymentv1.PaymentService_ServiceDesc)
}

// Whatever the request, validation never panics, refuses with InvalidArgument naming a field, and
// what it accepts is within the domain's limits.
func FuzzValidateCreatePayment(f *testing.F) {
	f.Add("alice", int64(100), "USD", int32(-1), int32(1), "tok", int32(1), "key", "k", "v")
	f.Add("", int64(0), "", int32(2), int32(0), "", int32(0), "", "", "")
	f.Add("a:b", int64(-1), "usd", int32(0), int32(7), "t\x00", int32(9), string(make([]byte, 300)), "\xff", "v")
	f.Add("bob", int64(1)<<62, "JPY", int32(0), int32(2), "tok", int32(2), "k2", "kk", "vv")
	f.Fuzz(func(t *testing.T, account string, amount int64, currency string, exp int32, method int32, token string, capture int32, key, mk, mv string) {
		m := &paymentv1.Money{Amount: amount, Currency: currency}
		if exp >= 0 {
			m.Exponent = &exp
		}
		req := &paymentv1.CreatePaymentRequest{AccountId: account, Amount: m, Method: paymentv1.PaymentMethod(method), PaymentToken: token,
			CaptureMethod: paymentv1.CaptureMethod(capture), IdempotencyKey: key, Metadata: map[string]string{mk: mv}}
		in, err := validateCreatePayment(req)
		if err != nil {
			e, ok := errors.AsType[*errs.Error](err)
			if !ok || e.Kind != errs.KindInvalidArgument || e.Field == "" {
				t.Fatalf("refusal %v is not InvalidArgument naming a field", err)
			}
			return
		}
		if in.Amount.Amount <= 0 || in.Amount.Amount > domain.MaxAmount {
			t.Fatalf("accepted amount %d", in.Amount.Amount)
		}
		e, ok := domain.Exponent(in.Amount.Currency)
		if !ok || (m.Exponent != nil && int32(e) != exp) {
			t.Fatalf("accepted currency %q exponent %d", in.Amount.Currency, exp)
		}
		if in.AccountID == "" || len(key) == 0 || len(key) > domain.MaxIdempotencyKey || in.PaymentToken == "" {
			t.Fatalf("accepted %+v with key %q", in, key)
		}
		if in.Method != domain.MethodCard && in.Method != domain.MethodBankTransfer {
			t.Fatalf("accepted method %q", in.Method)
		}
	})
}

func FuzzParsePageToken(f *testing.F) {
	f.Add(pageToken(123, "pay_abc"))
	f.Add("")
	f.Add("!!!")
	f.Fuzz(func(t *testing.T, tok string) {
		n, id, err := parsePageToken(tok, "pay_")
		if err != nil {
			return
		}
		if n < 0 || validateID("page_token", id, "pay_") != nil || pageToken(n, id) == "" {
			t.Fatalf("accepted %q as (%d, %q)", tok, n, id)
		}
	})
}

// The README's access table for payment is rendered from Policy (make docs rewrites it).
func TestReadmeAccessTable(t *testing.T) {
	authtest.CheckReadme(t, "payment", Policy, &paymentv1.PaymentService_ServiceDesc)
}

// An endpoint is refused, naming the field, when its URL could leak a credential or never be
// delivered to, or when it subscribes to a type the service never writes (a typo would be an
// endpoint that silently gets nothing).
func TestValidateEndpointRefusals(t *testing.T) {
	long := "https://example.com/" + strings.Repeat("a", 2048)
	many := make([]string, 33)
	for i := range many {
		many[i] = "payment.succeeded"
	}
	for _, tc := range []struct {
		url   string
		types []string
		field string // "" when accepted
	}{
		{"https://example.com/hook?source=bourse", []string{"payment.succeeded", "refund.failed", "payout.created"}, ""},
		{"http://example.com:8080/hook", nil, ""},
		{"https://user:secret@example.com/hook", nil, "url"},
		{"https://token@example.com/hook", nil, "url"},
		{"https://example.com/hook#frag", nil, "url"},
		{"ftp://example.com/hook", nil, "url"},
		{"javascript:alert(1)", nil, "url"},
		{"http:///hook", nil, "url"},
		{"/hook", nil, "url"},
		{"https://exa mple.com/", nil, "url"},
		{"https://example.com/\x00", nil, "url"},
		{long, nil, "url"},
		{"https://example.com/hook", []string{"payment.succeded"}, "event_types"},
		{"https://example.com/hook", []string{"payment.*"}, "event_types"},
		{"https://example.com/hook", []string{"payment.succeeded", "payment.succeeded"}, "event_types"},
		{"https://example.com/hook", []string{""}, "event_types"},
		{"https://example.com/hook", many, "event_types"},
	} {
		_, err := validateEndpoint(&paymentv1.CreateWebhookEndpointRequest{AccountId: "alice", Url: tc.url, EventTypes: tc.types, IdempotencyKey: "k"}, false)
		if tc.field == "" {
			if err != nil {
				t.Errorf("%.60q %v: refused: %v", tc.url, tc.types, err)
			}
			continue
		}
		e, ok := errors.AsType[*errs.Error](err)
		if !ok || e.Kind != errs.KindInvalidArgument || e.Field != tc.field {
			t.Errorf("%.60q %v: %v, want InvalidArgument naming %s", tc.url, tc.types, err, tc.field)
		}
	}
}

// An endpoint URL whose host is internal on its face is refused, naming url, unless internal
// deliveries are on (--webhook-allow-private-addresses): every delivery to it would be refused by the
// dispatcher's guard. Names, whatever they resolve to, are the guard's to check at each delivery.
func TestValidateEndpointInternalHosts(t *testing.T) {
	for _, tc := range []struct {
		url      string
		internal bool
	}{
		{"http://localhost:8080/hook", true},
		{"http://LocalHost./hook", true},
		{"https://api.localhost/hook", true},
		{"http://127.0.0.1:9000/hook", true},
		{"http://10.1.2.3/hook", true},
		{"http://192.168.1.10/hook", true},
		{"http://169.254.169.254/latest/meta-data", true},
		{"http://100.100.100.200/", true},
		{"http://0.0.0.0/", true},
		{"http://[::1]:8080/hook", true},
		{"http://[fd00:ec2::254]/", true},
		{"http://[::ffff:127.0.0.1]/", true},
		{"https://8.8.8.8/hook", false},
		{"https://[2606:4700::1111]/hook", false},
		{"https://hooks.example.com/hook", false},
		{"https://localhost.example.com/hook", false},
	} {
		req := &paymentv1.CreateWebhookEndpointRequest{AccountId: "alice", Url: tc.url, IdempotencyKey: "k"}
		_, err := validateEndpoint(req, false)
		e, refused := errors.AsType[*errs.Error](err)
		switch {
		case tc.internal && (!refused || e.Kind != errs.KindInvalidArgument || e.Field != "url"):
			t.Errorf("%s: %v, want InvalidArgument naming url", tc.url, err)
		case !tc.internal && err != nil:
			t.Errorf("%s: refused: %v", tc.url, err)
		}
		if _, err := validateEndpoint(req, true); err != nil {
			t.Errorf("%s with internal deliveries on: refused: %v", tc.url, err)
		}
	}
}
