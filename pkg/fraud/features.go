// Package fraud defines the features of a payment that the fraud model scores, shared by the payment
// service (which computes them for every deposit and calls inference) and by training (which generates
// a synthetic dataset with the same features to train the model). The order of Vector is the model's
// input layout: change it and every trained model is wrong, so it is versioned by FeatureVersion.
package fraud

import "math"

// FeatureVersion names the layout of Vector; a model's config records the version it was trained on.
// Version 2 takes the amounts in US dollars at a reference rate (reference.go); version 1 took them
// in the currency's own units, so that a yen looked like a dollar.
const FeatureVersion = 2

// Tensor names of the fraud model in inference (KServe v2).
const (
	ModelName  = "fraud"
	InputName  = "features"    // FP32 [batch, NumFeatures]
	OutputName = "probability" // FP32 [batch, 1]: probability that the payment is fraudulent
)

// Features are what payment knows about a deposit when it asks for a score. Amounts are in the
// currency's major units (12.34 USD is 12.34, 1,500 JPY is 1500), as floats: they only feed the
// model, and Vector takes them in US dollars at the currency's reference rate (USDPerUnit).
type Features struct {
	AmountMajor        float64 // this payment's amount
	Currency           string  // ISO-4217, upper case
	Method             string  // "card", "bank_transfer", ...
	AccountAgeDays     float64 // since the trading account's first payment (0 for the first one)
	DepositsLastHour   int     // the account's deposits created in the hour before this one
	DepositsLastDay    int     // ... in the 24 hours before this one
	AmountLastDayMajor float64 // sum of those deposits' amounts, in this payment's currency
}

// Index of each feature in Vector.
const (
	FeatLogAmount = iota
	FeatIsCard
	FeatIsBankTransfer
	FeatMajorCurrency
	FeatLogAccountAge
	FeatDepositsLastHour
	FeatDepositsLastDay
	FeatLogAmountLastDay
	NumFeatures
)

// majorCurrencies are the ones the model treats as low risk.
var majorCurrencies = map[string]bool{"USD": true, "EUR": true, "GBP": true, "JPY": true, "CHF": true}

// Vector is the model input, in the order of the Feat* constants. Counts are capped so a burst
// cannot push the input outside the range the model was trained on.
func (f Features) Vector() []float32 {
	v := make([]float32, NumFeatures)
	v[FeatLogAmount] = float32(math.Log1p(max(inUSD(f.AmountMajor, f.Currency), 0)))
	if f.Method == "card" {
		v[FeatIsCard] = 1
	}
	if f.Method == "bank_transfer" {
		v[FeatIsBankTransfer] = 1
	}
	if majorCurrencies[f.Currency] {
		v[FeatMajorCurrency] = 1
	}
	v[FeatLogAccountAge] = float32(math.Log1p(max(f.AccountAgeDays, 0)))
	v[FeatDepositsLastHour] = float32(min(f.DepositsLastHour, 50))
	v[FeatDepositsLastDay] = float32(min(f.DepositsLastDay, 200))
	v[FeatLogAmountLastDay] = float32(math.Log1p(max(inUSD(f.AmountLastDayMajor, f.Currency), 0)))
	return v
}
