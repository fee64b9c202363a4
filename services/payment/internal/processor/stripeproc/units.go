package stripeproc

import (
	"fmt"

	"github.com/bourse-dev/bourse/services/payment/internal/processor"
)

// Stripe counts a few currencies in other units than ISO-4217's minor units, which bourse uses:
//   - ISK has no minor unit in ISO-4217, but Stripe keeps it two-decimal: 100 is 1 króna;
//   - three-decimal currencies (KWD, BHD, JOD, OMR, TND) are in thousandths, but Stripe takes only
//     amounts that end in 0.
//
// Sending ISO units unchanged would charge 1/100 of an ISK amount.
var stripeScale = map[string]int64{"ISK": 100}

var stripeThreeDecimal = map[string]bool{"KWD": true, "BHD": true, "JOD": true, "OMR": true, "TND": true}

// toStripe converts an amount in ISO minor units into Stripe's units. An amount Stripe cannot take
// is NotReached: nothing was sent, so another processor may take it.
func toStripe(m processor.Money) (int64, processor.Result, bool) {
	if stripeThreeDecimal[m.Currency] && m.Amount%10 != 0 {
		return 0, processor.Result{Status: processor.NotReached,
			Message: fmt.Sprintf("money.amount: Stripe takes %s only in multiples of 10 thousandths, got %d", m.Currency, m.Amount)}, false
	}
	f, ok := stripeScale[m.Currency]
	if !ok {
		return m.Amount, processor.Result{}, true
	}
	if m.Amount > (1<<62)/f {
		return 0, processor.Result{Status: processor.NotReached, Message: fmt.Sprintf("money.amount: %d %s is too large for Stripe", m.Amount, m.Currency)}, false
	}
	return m.Amount * f, processor.Result{}, true
}

// fromStripe converts an amount Stripe reports back into ISO minor units.
func fromStripe(amount int64, currency string) int64 {
	if f, ok := stripeScale[currency]; ok {
		return amount / f
	}
	return amount
}
