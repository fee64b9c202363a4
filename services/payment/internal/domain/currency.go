// Package domain holds the payment service's vocabulary: currencies and amounts, the objects
// (payments, attempts, refunds, payouts) and the one function per object that says which status
// changes are legal. It knows nothing of gRPC or SQL.
package domain

import (
	"fmt"
	"math"
	"strings"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/pkg/money"
)

// MaxAmount bounds every amount in minor units. It keeps sums of many amounts (ledger balances,
// refunds against a payment) far from int64 overflow and fits exactly in a float64 for the fraud
// features.
const MaxAmount int64 = 1 << 50

// Exponent returns the number of minor-unit decimals of currency (upper case ISO-4217).
func Exponent(currency string) (int, bool) { return money.CurrencyExponent(currency) }

// Currencies lists the accepted codes, sorted.
func Currencies() []string { return money.Currencies() }

// Money is an amount in integer minor units of a currency.
type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// ValidateMoney checks an amount given by a client: a known currency, strictly positive, at most
// MaxAmount. field names the request field ("amount") for the error.
func ValidateMoney(field string, m Money) error {
	if _, ok := Exponent(m.Currency); !ok {
		if m.Currency == "" {
			return errs.Invalid(field+".currency", "required (ISO-4217, e.g. USD)")
		}
		if strings.ToUpper(m.Currency) != m.Currency {
			return errs.Invalid(field+".currency", "%q must be upper case", m.Currency)
		}
		return errs.Invalid(field+".currency", "%q is not a supported ISO-4217 currency", m.Currency)
	}
	if err := ValidateAmount(field+".amount", m.Amount); err != nil {
		return err
	}
	exp, _ := Exponent(m.Currency)
	if limit := maxMajor * pow10(exp); m.Amount > limit {
		return errs.Invalid(field+".amount", "%d is more than %d %s in one payment", m.Amount, maxMajor, m.Currency)
	}
	return nil
}

// maxMajor bounds one payment in major units of its currency (10 billion): far above any real
// deposit, and within what risk holds at the asset scales bourse uses (int64 at scale 8 is about
// 92 billion), so a charge the processor makes can always be credited.
const maxMajor int64 = 10_000_000_000

func pow10(n int) int64 {
	p := int64(1)
	for range n {
		p *= 10
	}
	return p
}

// ValidateAmount checks a positive amount of minor units.
func ValidateAmount(field string, amount int64) error {
	switch {
	case amount == 0:
		return errs.Invalid(field, "must be positive, got 0")
	case amount < 0:
		return errs.Invalid(field, "must be positive, got %d", amount)
	case amount > MaxAmount:
		return errs.Invalid(field, "%d exceeds the maximum of %d minor units", amount, MaxAmount)
	}
	return nil
}

// Decimal formats minor units as a decimal string in major units ("12345" USD is "123.45"), the form
// risk takes amounts in.
func Decimal(m Money) string {
	exp, _ := Exponent(m.Currency)
	neg := m.Amount < 0
	a := m.Amount
	if neg {
		a = -a
	}
	s := fmt.Sprintf("%0*d", exp+1, a)
	if exp > 0 {
		s = s[:len(s)-exp] + "." + s[len(s)-exp:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// Major returns the amount in major units as a float, for model features only.
func Major(m Money) float64 {
	exp, _ := Exponent(m.Currency)
	return float64(m.Amount) / math.Pow10(exp)
}
