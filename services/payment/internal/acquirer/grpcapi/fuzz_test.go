package grpcapi

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	acquirerv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/acquirer/v1"
	"github.com/bourse-dev/bourse/services/payment/internal/acquirer"
)

// Any authorize request is either refused with InvalidArgument naming one of its fields, or
// converted into a domain request within every bound.
func FuzzAuthorizeRequest(f *testing.F) {
	f.Add("att-1", int64(1999), "USD", "card", "tok_visa", "payment_id", "pay_1")
	f.Add("", int64(0), "usd", "", "", "", "")
	f.Add(strings.Repeat("k", 256), int64(-1), "EURO", "card", "tok", strings.Repeat("m", 41), "v")
	f.Fuzz(func(t *testing.T, key string, amount int64, currency, method, token, metaKey, metaVal string) {
		r := &acquirerv1.AuthorizeRequest{Key: key, Money: &acquirerv1.Money{Amount: amount, Currency: currency},
			Method: method, PaymentToken: token, Metadata: map[string]string{metaKey: metaVal}}
		req, err := authorizeRequest(r)
		if err != nil {
			st := status.Convert(err)
			field, _, _ := strings.Cut(st.Message(), ":")
			fields := []string{"key", "money", "money.amount", "money.currency", "method", "payment_token", "statement_descriptor", "metadata"}
			if st.Code() != codes.InvalidArgument || !slices.Contains(fields, field) {
				t.Fatalf("refused with %v, want InvalidArgument naming a field", err)
			}
			return
		}
		if req.Kind != acquirer.Authorize || len(req.Key) == 0 || len(req.Key) > maxKeyLen || req.Amount <= 0 ||
			req.Amount > maxAmountMinor || len(req.Currency) != 3 || req.Token == "" || req.Method == "" {
			t.Fatalf("accepted out of bounds: %+v", req)
		}
	})
}

// Any --fault-decline text parses or is refused, never panics; what parses validates or is refused
// naming a faults field.
func FuzzParseDeclineRules(f *testing.F) {
	f.Add("token=tok_declined,code=card_declined;min=1000000,code=insufficient_funds")
	f.Add("kinds=refund|payout,max=5")
	f.Add("min=5,max=4")
	f.Fuzz(func(t *testing.T, s string) {
		rules, err := acquirer.ParseDeclineRules(s)
		if err != nil {
			return
		}
		if err := (acquirer.Faults{Rules: rules}).Validate(); err != nil && !strings.HasPrefix(err.Error(), "faults.decline_rules") {
			t.Fatalf("rules %q: %v", s, err)
		}
	})
}
