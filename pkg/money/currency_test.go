package money

import "testing"

func TestMinorUnitsFollowTheCurrencyExponent(t *testing.T) {
	for _, c := range []struct {
		amount, currency string
		want             int64
		ok               bool
	}{
		{"12.34", "USD", 1234, true}, {"1000", "JPY", 1000, true}, {"1.5", "JPY", 0, false},
		{"1.234", "KWD", 1234, true}, {"1.2345", "KWD", 0, false}, {"1", "XXX", 0, false}, {"abc", "USD", 0, false},
	} {
		got, err := MinorUnits("amount", c.amount, c.currency)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("%s %s: %d, %v", c.amount, c.currency, got, err)
		}
	}
	if s := FormatMinor(1234, "USD"); s != "12.34" {
		t.Errorf("FormatMinor USD = %s", s)
	}
	if s := FormatMinor(5, "KWD"); s != "0.005" {
		t.Errorf("FormatMinor KWD = %s", s)
	}
	if s := FormatMinor(700, "JPY"); s != "700" {
		t.Errorf("FormatMinor JPY = %s", s)
	}
}
