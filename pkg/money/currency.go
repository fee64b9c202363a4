package money

import (
	"fmt"
	"maps"
	"slices"

	"github.com/shopspring/decimal"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// currencyExponents is the ISO-4217 minor-unit exponent of each currency bourse accepts. A currency
// missing here is refused: guessing an exponent would misstate amounts by powers of ten. Payment
// validates with it and the CLI converts "12.34 USD" with it, so both read one table.
var currencyExponents = map[string]int{
	"USD": 2, "EUR": 2, "GBP": 2, "CHF": 2, "CAD": 2, "AUD": 2, "NZD": 2, "SEK": 2, "NOK": 2, "DKK": 2,
	"PLN": 2, "CZK": 2, "HUF": 2, "SGD": 2, "HKD": 2, "CNY": 2, "INR": 2, "MXN": 2, "BRL": 2, "ZAR": 2,
	"JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "VND": 0, "XOF": 0, "XAF": 0, "UGX": 0, "PYG": 0,
	"KWD": 3, "BHD": 3, "JOD": 3, "OMR": 3, "TND": 3, "LYD": 3, "IQD": 3,
}

// CurrencyExponent returns the number of minor-unit decimals of currency (upper case ISO-4217).
func CurrencyExponent(currency string) (int, bool) {
	e, ok := currencyExponents[currency]
	return e, ok
}

// Currencies lists the accepted codes, sorted.
func Currencies() []string { return slices.Sorted(maps.Keys(currencyExponents)) }

// MinorUnits converts a decimal amount in major units ("12.34") of currency to integer minor units
// (1234), refusing more decimals than the currency has.
func MinorUnits(field, amount, currency string) (int64, error) {
	exp, ok := CurrencyExponent(currency)
	if !ok {
		return 0, errs.Invalid(field, "%q is not a supported ISO-4217 currency", currency)
	}
	d, err := Parse(field, amount)
	if err != nil {
		return 0, err
	}
	return DecimalToUnits(field, d, uint8(exp))
}

// FormatMinor writes minor units of currency as a decimal in major units ("1234" USD is "12.34").
func FormatMinor(units int64, currency string) string {
	exp, ok := CurrencyExponent(currency)
	if !ok {
		return fmt.Sprintf("%d (minor units)", units)
	}
	return decimal.New(units, -int32(exp)).StringFixed(int32(exp))
}
