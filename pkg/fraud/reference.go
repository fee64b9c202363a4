package fraud

import (
	"math"

	"github.com/bourse-dev/bourse/pkg/money"
)

// usdPerUnit is what one major unit of each currency is worth in US dollars, roughly: the model
// scores amounts in dollars, so that 15,000 JPY and 100 USD look alike to it. These are reference
// rates for a feature, never for money: the model needs the order of magnitude right, and a rate a
// tenth off moves ln(1 + amount) by 0.1, a fraction of the spread of honest amounts (σ ≈ 1). It
// covers every currency payment accepts (pkg/money) and the ones the dataset draws.
var usdPerUnit = map[string]float64{
	"USD": 1, "EUR": 1.08, "GBP": 1.27, "CHF": 1.13, "CAD": 0.73, "AUD": 0.66, "NZD": 0.60,
	"SEK": 0.095, "NOK": 0.093, "DKK": 0.145, "PLN": 0.25, "CZK": 0.043, "HUF": 0.0027,
	"SGD": 0.74, "HKD": 0.128, "CNY": 0.14, "INR": 0.012, "MXN": 0.055, "BRL": 0.18, "ZAR": 0.054,
	"TRY": 0.03,
	"JPY": 0.0067, "KRW": 0.00073, "CLP": 0.00105, "ISK": 0.0072, "VND": 0.00004, "XOF": 0.00165,
	"XAF": 0.00165, "UGX": 0.00027, "PYG": 0.00013,
	"KWD": 3.25, "BHD": 2.65, "JOD": 1.41, "OMR": 2.6, "TND": 0.32, "LYD": 0.21, "IQD": 0.00076,
}

// USDPerUnit is the reference rate of currency (one major unit in US dollars) and whether the table
// has it. A currency it lacks is taken at one dollar, as every currency was before FeatureVersion 2.
func USDPerUnit(currency string) (float64, bool) {
	r, ok := usdPerUnit[currency]
	if !ok {
		return 1, false
	}
	return r, true
}

// inUSD is amount, in currency's major units, in US dollars at the reference rate.
func inUSD(amount float64, currency string) float64 {
	r, _ := USDPerUnit(currency)
	return amount * r
}

// fromUSD is a dollar amount in currency's major units at the reference rate, rounded to the
// currency's minor unit (to the cent for a currency pkg/money does not know).
func fromUSD(usd float64, currency string) float64 {
	r, _ := USDPerUnit(currency)
	exp, ok := money.CurrencyExponent(currency)
	if !ok {
		exp = 2
	}
	scale := math.Pow10(exp)
	return math.Round(usd/r*scale) / scale
}
