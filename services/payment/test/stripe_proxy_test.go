package payment_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/bourse-dev/bourse/pkg/testenv"
)

// stripeState is a recording proxy in front of a real stripe-mock that gives stripe-mock's
// PaymentIntent answers the state a real Stripe account would have for the test card
// (pm_card_visa). stripe-mock validates every request against Stripe's API and answers from
// fixtures, but it is stateless: its PaymentIntent always requires_payment_method, so no deposit
// could ever succeed through it. Only what that state decides is rewritten, from the request
// itself: a confirmed PaymentIntent is succeeded (capture_method automatic, amount_received =
// amount) or requires_capture (manual, amount_capturable = amount); a capture is succeeded with
// amount_received = amount_to_capture; a cancel is canceled. Refunds and payouts are stripe-mock's
// own answers (succeeded, in_transit); a request stripe-mock refuses is answered as it was.
func stripeState(t *testing.T, target string) *testenv.StripeProxy {
	p := testenv.NewStripeProxy(t, target)
	p.SetRewrite(func(c testenv.StripeCall, pi map[string]any) {
		if c.Method != "POST" || !strings.HasPrefix(c.Path, "/v1/payment_intents") {
			return
		}
		amount := func(field string) int64 {
			n, err := strconv.ParseInt(c.Form.Get(field), 10, 64)
			if err != nil {
				t.Errorf("%s: form %s = %q", c.Path, field, c.Form.Get(field))
			}
			return n
		}
		switch {
		case c.Path == "/v1/payment_intents" && c.Form.Get("confirm") == "true":
			a := amount("amount")
			pi["amount"], pi["currency"], pi["last_payment_error"] = a, c.Form.Get("currency"), nil
			if c.Form.Get("capture_method") == "manual" {
				pi["status"], pi["amount_capturable"], pi["amount_received"] = "requires_capture", a, 0
			} else {
				pi["status"], pi["amount_capturable"], pi["amount_received"] = "succeeded", 0, a
			}
		case strings.HasSuffix(c.Path, "/capture"):
			pi["status"], pi["amount_capturable"], pi["amount_received"], pi["last_payment_error"] = "succeeded", 0, amount("amount_to_capture"), nil
		case strings.HasSuffix(c.Path, "/cancel"):
			pi["status"], pi["amount_capturable"], pi["last_payment_error"] = "canceled", 0, nil
		}
	})
	return p
}
