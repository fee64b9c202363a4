package stripeproc

import (
	"testing"

	"github.com/bourse-dev/bourse/services/payment/internal/processor"
)

func TestStripeUnits(t *testing.T) {
	for _, c := range []struct {
		money processor.Money
		want  int64
		ok    bool
	}{
		{processor.Money{Amount: 500, Currency: "ISK"}, 50000, true}, // 500 krónur: Stripe's 50000
		{processor.Money{Amount: 1234, Currency: "USD"}, 1234, true},
		{processor.Money{Amount: 700, Currency: "JPY"}, 700, true},
		{processor.Money{Amount: 5120, Currency: "KWD"}, 5120, true},
		{processor.Money{Amount: 5125, Currency: "KWD"}, 0, false}, // Stripe takes thousandths ending in 0 only
		{processor.Money{Amount: 1 << 60, Currency: "ISK"}, 0, false},
	} {
		got, r, ok := toStripe(c.money)
		if ok != c.ok || got != c.want || (!ok && r.Status != processor.NotReached) {
			t.Errorf("%v: %d %v %v, want %d %v (and NotReached when refused)", c.money, got, ok, r.Status, c.want, c.ok)
		}
		if ok && fromStripe(got, c.money.Currency) != c.money.Amount {
			t.Errorf("%v: back from Stripe's units as %d", c.money, fromStripe(got, c.money.Currency))
		}
	}
}
