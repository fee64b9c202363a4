// Package money converts between the decimal strings of the API ("101.25") and the integer units
// used inside (10125 at scale 2). Conversions are exact: a value with more decimals than the scale
// allows, or too large for int64, is an error naming the field — never rounded, never a float.
package money

import (
	"math"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// MaxScale is the most decimals a unit can have (10^18 is the largest power of ten in int64).
const MaxScale = 18

var (
	minInt64 = decimal.NewFromInt(math.MinInt64)
	maxInt64 = decimal.NewFromInt(math.MaxInt64)
)

// Parse reads a decimal string strictly: digits with an optional sign and fraction, no exponent, no
// spaces, at most 64 characters.
func Parse(field, s string) (decimal.Decimal, error) {
	if s == "" {
		return decimal.Decimal{}, errs.Invalid(field, "is required")
	}
	if len(s) > 64 || strings.ContainsAny(s, "eE \t\n_") {
		return decimal.Decimal{}, errs.Invalid(field, "%q is not a plain decimal number", clip(s))
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return decimal.Decimal{}, errs.Invalid(field, "%q is not a decimal number", clip(s))
	}
	return d, nil
}

// ToUnits converts s to an integer count of 10^-scale units.
func ToUnits(field, s string, scale uint8) (int64, error) {
	if v, ok := fastUnits(s, scale); ok {
		return v, nil
	}
	d, err := Parse(field, s)
	if err != nil {
		return 0, err
	}
	return DecimalToUnits(field, d, scale)
}

// DecimalToUnits converts d to an integer count of 10^-scale units.
func DecimalToUnits(field string, d decimal.Decimal, scale uint8) (int64, error) {
	if scale > MaxScale {
		return 0, errs.Invalid(field, "scale %d exceeds %d", scale, MaxScale)
	}
	shifted := d.Shift(int32(scale))
	if !shifted.IsInteger() {
		return 0, errs.Invalid(field, "%s has more than %d decimal places", d.String(), scale)
	}
	if shifted.LessThan(minInt64) || shifted.GreaterThan(maxInt64) {
		return 0, errs.Invalid(field, "%s is out of range", d.String())
	}
	return shifted.IntPart(), nil
}

// Positive is ToUnits for values that must be > 0.
func Positive(field, s string, scale uint8) (int64, error) {
	v, err := ToUnits(field, s, scale)
	if err != nil {
		return 0, err
	}
	if v <= 0 {
		return 0, errs.Invalid(field, "must be greater than zero")
	}
	return v, nil
}

// NonNegative is ToUnits for values that must be >= 0; an empty string is zero.
func NonNegative(field, s string, scale uint8) (int64, error) {
	if s == "" {
		return 0, nil
	}
	v, err := ToUnits(field, s, scale)
	if err != nil {
		return 0, err
	}
	if v < 0 {
		return 0, errs.Invalid(field, "must not be negative")
	}
	return v, nil
}

// Format writes units at scale as a canonical decimal string ("1.5", "-0.01", "0").
func Format(units int64, scale uint8) string {
	if s, ok := fastFormat(units, scale); ok {
		return s
	}
	return decimal.New(units, -int32(scale)).String()
}

func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}
