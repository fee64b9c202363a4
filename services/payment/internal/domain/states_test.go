package domain

import (
	"fmt"
	"testing"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// allowed lists the legal transitions as "from>to", written out independently of the tables in
// states.go so that a change to either shows up here.
func checkEveryPair[S ~string](t *testing.T, all []S, allowed []string, fn func(from, to S) error) {
	t.Helper()
	legal := map[string]bool{}
	for _, a := range allowed {
		legal[a] = true
	}
	seen := 0
	for _, from := range all {
		for _, to := range all {
			pair := fmt.Sprintf("%s>%s", from, to)
			err := fn(from, to)
			if legal[pair] {
				seen++
				if err != nil {
					t.Errorf("%s: refused: %v", pair, err)
				}
				continue
			}
			if err == nil {
				t.Errorf("%s: allowed, want refused", pair)
			} else if errs.KindOf(err) != errs.KindFailedPrecondition {
				t.Errorf("%s: kind %v, want FailedPrecondition", pair, errs.KindOf(err))
			}
		}
	}
	if seen != len(allowed) {
		t.Errorf("%d legal pairs found among the statuses, want %d (a listed status is missing)", seen, len(allowed))
	}
}

func TestPaymentTransitionsEveryPair(t *testing.T) {
	checkEveryPair(t, PaymentStatuses, []string{
		"requires_confirmation>processing", "requires_confirmation>canceled",
		"processing>requires_capture", "processing>succeeded", "processing>failed", "processing>canceled",
		"requires_capture>processing", "requires_capture>canceled", "requires_capture>failed",
		"succeeded>partially_refunded", "succeeded>refunded",
		"partially_refunded>partially_refunded", "partially_refunded>refunded",
	}, PaymentTransition)
}

func TestAttemptTransitionsEveryPair(t *testing.T) {
	checkEveryPair(t, AttemptStatuses, []string{
		"pending>authorized", "pending>captured", "pending>failed", "pending>unknown", "pending>not_reached",
		"unknown>authorized", "unknown>captured", "unknown>failed",
		"authorized>captured", "authorized>voided", "authorized>failed",
	}, AttemptTransition)
}

func TestRefundTransitionsEveryPair(t *testing.T) {
	checkEveryPair(t, RefundStatuses, []string{
		"pending>processing", "pending>failed",
		"processing>succeeded", "processing>unknown", "processing>reversing",
		"unknown>succeeded", "unknown>reversing",
		"reversing>failed",
	}, RefundTransition)
}

func TestPayoutTransitionsEveryPair(t *testing.T) {
	checkEveryPair(t, PayoutStatuses, []string{
		"pending>processing", "pending>failed",
		"processing>succeeded", "processing>reversing",
		"reversing>failed",
	}, PayoutTransition)
}

func TestValidateMoney(t *testing.T) {
	for _, c := range []struct {
		m     Money
		field string // "" when valid
	}{
		{Money{100, "USD"}, ""},
		{Money{1, "JPY"}, ""},
		{Money{1, "KWD"}, ""},
		{Money{1_000_000_000_000, "EUR"}, ""}, // 10 billion EUR, the most one payment may be
		{Money{0, "USD"}, "amount.amount"},
		{Money{-5, "USD"}, "amount.amount"},
		{Money{MaxAmount + 1, "USD"}, "amount.amount"},
		{Money{1<<63 - 1, "USD"}, "amount.amount"},
		{Money{100, ""}, "amount.currency"},
		{Money{100, "usd"}, "amount.currency"},
		{Money{100, "XXX"}, "amount.currency"},
	} {
		err := ValidateMoney("amount", c.m)
		if c.field == "" {
			if err != nil {
				t.Errorf("%+v: %v", c.m, err)
			}
			continue
		}
		e, ok := err.(*errs.Error)
		if !ok || e.Kind != errs.KindInvalidArgument || e.Field != c.field {
			t.Errorf("%+v: got %v, want InvalidArgument on %s", c.m, err, c.field)
		}
	}
}

func TestExponentsAndDecimal(t *testing.T) {
	for cur, want := range map[string]int{"USD": 2, "EUR": 2, "GBP": 2, "CHF": 2, "JPY": 0, "KRW": 0, "KWD": 3, "BHD": 3} {
		if got, ok := Exponent(cur); !ok || got != want {
			t.Errorf("Exponent(%s) = %d, %v; want %d", cur, got, ok, want)
		}
	}
	for _, c := range []struct {
		m    Money
		want string
	}{
		{Money{12345, "USD"}, "123.45"}, {Money{5, "USD"}, "0.05"}, {Money{500, "JPY"}, "500"},
		{Money{1, "KWD"}, "0.001"}, {Money{-250, "EUR"}, "-2.50"}, {Money{1234567, "BHD"}, "1234.567"},
	} {
		if got := Decimal(c.m); got != c.want {
			t.Errorf("Decimal(%+v) = %s, want %s", c.m, got, c.want)
		}
	}
}

func TestOnePaymentIsAtMostTenBillionMajorUnits(t *testing.T) {
	for _, c := range []struct {
		m  Money
		ok bool
	}{
		{Money{Amount: 1_000_000_000_000, Currency: "USD"}, true},  // 10 billion USD
		{Money{Amount: 1_000_000_000_001, Currency: "USD"}, false}, // a cent more
		{Money{Amount: 10_000_000_000, Currency: "JPY"}, true},
		{Money{Amount: 10_000_000_001, Currency: "JPY"}, false},
		{Money{Amount: 10_000_000_000_000, Currency: "KWD"}, true},
	} {
		if err := ValidateMoney("amount", c.m); (err == nil) != c.ok {
			t.Errorf("%+v: %v", c.m, err)
		}
	}
}
