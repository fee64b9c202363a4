package fraud

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
)

// Sample is one labelled payment of the synthetic dataset.
type Sample struct {
	Features
	Fraud bool
}

// MaxSamples bounds one generated dataset (each sample is ~100 bytes).
const MaxSamples = 10_000_000

// FraudRate is the share of payments drawn from a fraud pattern (before label noise).
const FraudRate = 0.04

// Label noise: some fraud is never reported, and some honest payments are charged back anyway.
const (
	missedFraudRate   = 0.02
	falseChargeback   = 0.003
	minorCurrencyList = "SEK NOK PLN TRY BRL ZAR MXN HUF"
)

var (
	majorList = []string{"USD", "EUR", "GBP", "JPY", "CHF"}
	majorMix  = []float64{0.45, 0.30, 0.12, 0.08, 0.05}
	minorList = strings.Fields(minorCurrencyList)
)

// Generate draws n labelled payments from seed. The same seed and n give the same samples, and a
// longer dataset starts with the shorter one's samples. The process (documented in README.md):
//
//   - 96% are honest: account age mostly long (15% new), card 55% / bank transfer 40% / wallet 5%,
//     major currencies 93%, log-normal amounts (card median 150, bank transfer 800, wallet 80), and
//     a quiet history (on average 0.6 deposits in the last day, 3 for the 10% who trade actively).
//   - 4% follow one of three fraud patterns: card testing (bursts of small card deposits, often on
//     new accounts), stolen-card cash-in (a large card or wallet deposit on a brand-new account) and
//     account takeover (an old account that suddenly deposits large amounts in a burst); all three
//     use non-major currencies more often and bank transfers rarely.
//   - Labels are noisy: 2% of fraud is labelled honest (never reported), 0.3% of honest payments
//     are labelled fraud (chargebacks).
//
// Amounts are drawn in US dollars and expressed in the sample's currency at its reference rate
// (USDPerUnit), rounded to the currency's minor unit: what Vector reads back in dollars.
func Generate(seed uint64, n int) ([]Sample, error) {
	if n < 0 || n > MaxSamples {
		return nil, fmt.Errorf("fraud: %d samples is outside 0-%d", n, MaxSamples)
	}
	r := newRNG(seed)
	out := make([]Sample, n)
	for i := range out {
		out[i] = r.sample()
	}
	return out, nil
}

func (r *rng) sample() Sample {
	if !r.bernoulli(FraudRate) {
		s := r.honest()
		s.Fraud = r.bernoulli(falseChargeback)
		return s.inCurrency()
	}
	var s Sample
	switch r.pick(0.35, 0.35, 0.30) {
	case 0:
		s = r.cardTesting()
	case 1:
		s = r.cashIn()
	default:
		s = r.takeover()
	}
	s.Fraud = !r.bernoulli(missedFraudRate)
	return s.inCurrency()
}

// inCurrency expresses the sample's amounts, drawn in US dollars, in its currency (no draw: the
// samples of a seed stay the same draws).
func (s Sample) inCurrency() Sample {
	s.AmountMajor = fromUSD(s.AmountMajor, s.Currency)
	s.AmountLastDayMajor = fromUSD(s.AmountLastDayMajor, s.Currency)
	return s
}

func (r *rng) honest() Sample {
	var f Features
	f.AccountAgeDays = r.accountAge(0.15, 400)
	var median, sigma float64
	switch r.pick(0.55, 0.40, 0.05) {
	case 0:
		f.Method, median, sigma = "card", 150, 1.0
	case 1:
		f.Method, median, sigma = "bank_transfer", 800, 1.1
	default:
		f.Method, median, sigma = "wallet", 80, 0.8
	}
	f.Currency = r.currency(0.07)
	f.AmountMajor = r.amount(median, sigma)
	dayMean := 0.6
	if r.bernoulli(0.10) {
		dayMean = 3
	}
	r.history(&f, r.poisson(dayMean), 0.08, median, sigma)
	return Sample{Features: f}
}

// cardTesting: many small card charges in a short time, to find out which stolen cards work.
func (r *rng) cardTesting() Sample {
	f := Features{Method: "card", Currency: r.currency(0.35)}
	if r.bernoulli(0.6) {
		f.AccountAgeDays = 0.01 + 2*r.float()
	} else {
		f.AccountAgeDays = r.exponential(100)
	}
	f.AmountMajor = r.amount(15, 0.7)
	hour := 1 + r.poisson(6)
	f.DepositsLastHour = hour
	f.DepositsLastDay = hour + r.poisson(3)
	f.AmountLastDayMajor = r.amounts(f.DepositsLastDay, 15, 0.7)
	return Sample{Features: f}
}

// cashIn: a stolen card (or wallet) funds a brand-new account with one large deposit.
func (r *rng) cashIn() Sample {
	f := Features{Method: "card", Currency: r.currency(0.40)}
	if r.bernoulli(0.15) {
		f.Method = "wallet"
	}
	if !r.bernoulli(0.5) {
		f.AccountAgeDays = r.float()
	}
	f.AmountMajor = r.amount(2500, 0.8)
	r.history(&f, r.poisson(1.5), 0.4, 2500, 0.8)
	return Sample{Features: f}
}

// takeover: an established account, taken over, suddenly deposits large amounts in a burst.
func (r *rng) takeover() Sample {
	var f Features
	f.AccountAgeDays = 3 + r.exponential(500)
	switch r.pick(0.5, 0.4, 0.1) {
	case 0:
		f.Method = "card"
	case 1:
		f.Method = "bank_transfer"
	default:
		f.Method = "wallet"
	}
	f.Currency = r.currency(0.30)
	f.AmountMajor = r.amount(4000, 0.9)
	r.history(&f, 1+r.poisson(2.5), 0.5, 1500, 0.9)
	return Sample{Features: f}
}

// accountAge: a share of new accounts (half of them on their very first payment), the rest old.
func (r *rng) accountAge(newShare, meanDays float64) float64 {
	if r.bernoulli(newShare) {
		if r.bernoulli(0.5) {
			return 0
		}
		return 3 * r.float()
	}
	return 3 + r.exponential(meanDays)
}

// history fills the deposits of the last day (and the share of them in the last hour) with their
// amounts. A first payment (age 0) has none.
func (r *rng) history(f *Features, day int, hourShare, median, sigma float64) {
	if f.AccountAgeDays == 0 {
		return
	}
	f.DepositsLastDay = day
	for range day {
		if r.bernoulli(hourShare) {
			f.DepositsLastHour++
		}
	}
	f.AmountLastDayMajor = r.amounts(day, median, sigma)
}

func (r *rng) currency(minorShare float64) string {
	if r.bernoulli(minorShare) {
		return minorList[int(r.float()*float64(len(minorList)))]
	}
	return majorList[r.pick(majorMix...)]
}

// amount is a log-normal amount in major units, to the cent, at least 1.
func (r *rng) amount(median, sigma float64) float64 {
	return max(1, math.Round(median*math.Exp(sigma*r.normal())*100)/100)
}

func (r *rng) amounts(n int, median, sigma float64) float64 {
	var sum float64
	for range n {
		sum += r.amount(median, sigma)
	}
	return math.Round(sum*100) / 100
}

// rng draws only from PCG's raw output with its own transforms, so the dataset depends on the seed and
// this file, not on how math/rand implements its distributions.
type rng struct{ src *rand.PCG }

func newRNG(seed uint64) *rng { return &rng{src: rand.NewPCG(seed, 0x6672617564)} } // "fraud"

// float is uniform in [0, 1).
func (r *rng) float() float64 { return float64(r.src.Uint64()>>11) / (1 << 53) }

func (r *rng) bernoulli(p float64) bool { return r.float() < p }

// normal is a standard normal (Box-Muller; one of the pair is discarded to keep the stream simple).
func (r *rng) normal() float64 {
	u1, u2 := 1-r.float(), r.float()
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}

func (r *rng) exponential(mean float64) float64 { return -mean * math.Log(1-r.float()) }

// poisson is Knuth's method: the means used here are small. The cap only bounds the loop.
func (r *rng) poisson(mean float64) int {
	limit, p := math.Exp(-mean), 1.0
	for k := 0; k < 1000; k++ {
		p *= r.float()
		if p <= limit {
			return k
		}
	}
	return 1000
}

// pick returns i with probability weights[i] (weights sum to 1).
func (r *rng) pick(weights ...float64) int {
	u := r.float()
	for i, w := range weights {
		if u < w {
			return i
		}
		u -= w
	}
	return len(weights) - 1
}
