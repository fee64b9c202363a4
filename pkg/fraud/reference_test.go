package fraud_test

import (
	"math"
	"slices"
	"testing"

	"github.com/bourse-dev/bourse/pkg/fraud"
	"github.com/bourse-dev/bourse/pkg/money"
)

// Every currency payment accepts has a reference rate: one without would be scored as if a unit
// were a dollar, which for a currency of small units (VND, 0.00004 USD) makes every deposit look huge.
func TestEveryAcceptedCurrencyHasAReferenceRate(t *testing.T) {
	for _, c := range money.Currencies() {
		if r, ok := fraud.USDPerUnit(c); !ok || r <= 0 {
			t.Errorf("%s: no reference rate", c)
		}
	}
}

// The model sees the same deposit in any currency alike: 15,000 JPY is about 100 USD, and scored
// as 100 USD, not as 15,000 (FeatureVersion 1 scored it as a 15,000-dollar deposit).
func TestAmountsAreScoredInDollars(t *testing.T) {
	base := fraud.Features{Method: "card", AccountAgeDays: 200, DepositsLastDay: 2}
	for _, c := range []string{"JPY", "KWD", "HUF", "VND", "EUR"} {
		rate, _ := fraud.USDPerUnit(c)
		local, usd := base, base
		local.Currency, local.AmountMajor, local.AmountLastDayMajor = c, 100/rate, 40/rate
		usd.Currency, usd.AmountMajor, usd.AmountLastDayMajor = "USD", 100, 40
		lv, uv := local.Vector(), usd.Vector()
		for _, j := range []int{fraud.FeatLogAmount, fraud.FeatLogAmountLastDay} {
			if math.Abs(float64(lv[j]-uv[j])) > 1e-4 {
				t.Errorf("%s: feature %d is %v, the dollar amount's %v", c, j, lv[j], uv[j])
			}
		}
	}
}

// The dataset's amounts are in the sample's currency: its yen are whole and about 150 times its
// dollars, and read back in dollars they have the distribution the README documents (honest card
// deposits: median 150 USD) whatever the currency.
func TestDatasetAmountsAreInTheSamplesCurrency(t *testing.T) {
	samples, err := fraud.Generate(3, 40_000)
	if err != nil {
		t.Fatal(err)
	}
	var yen, dollars []float64
	for _, s := range samples {
		if s.Fraud || s.Method != "card" || s.DepositsLastHour > 0 {
			continue
		}
		switch s.Currency {
		case "JPY":
			if s.AmountMajor != math.Trunc(s.AmountMajor) {
				t.Fatalf("a yen amount with decimals: %v", s.AmountMajor)
			}
			yen = append(yen, s.AmountMajor)
		case "USD":
			dollars = append(dollars, s.AmountMajor)
		}
	}
	rate, _ := fraud.USDPerUnit("JPY")
	my, md := median(yen)*rate, median(dollars)
	if len(yen) < 500 || my < md*0.8 || my > md*1.25 {
		t.Fatalf("%d yen samples: median %.0f USD; %d dollar samples: median %.0f USD", len(yen), my, len(dollars), md)
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
