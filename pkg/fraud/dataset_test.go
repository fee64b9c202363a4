package fraud_test

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/bourse-dev/bourse/pkg/fraud"
)

func TestGenerateIsDeterministic(t *testing.T) {
	a, err := fraud.Generate(7, 2000)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := fraud.Generate(7, 2000)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed gave different samples")
	}
	short, _ := fraud.Generate(7, 500)
	if !reflect.DeepEqual(short, a[:500]) {
		t.Fatal("a shorter dataset is not the start of the longer one")
	}
	c, _ := fraud.Generate(8, 2000)
	if reflect.DeepEqual(a, c) {
		t.Fatal("another seed gave the same samples")
	}
	for _, n := range []int{-1, fraud.MaxSamples + 1} {
		if _, err := fraud.Generate(1, n); err == nil || !strings.Contains(err.Error(), "samples is outside") {
			t.Errorf("Generate(%d): %v", n, err)
		}
	}
	if s, err := fraud.Generate(1, 0); err != nil || len(s) != 0 {
		t.Errorf("Generate(0) = %d samples, %v", len(s), err)
	}
}

// stats are the shares and means a class of samples shows.
type stats struct {
	n                                    float64
	card, bank, major, firstPayment, new float64
	hour, logAmount                      float64
}

func classStats(samples []fraud.Sample, fraudulent bool) stats {
	var s stats
	for _, x := range samples {
		if x.Fraud != fraudulent {
			continue
		}
		s.n++
		switch x.Method {
		case "card":
			s.card++
		case "bank_transfer":
			s.bank++
		}
		if x.Vector()[fraud.FeatMajorCurrency] == 1 {
			s.major++
		}
		if x.AccountAgeDays == 0 {
			s.firstPayment++
		}
		if x.AccountAgeDays < 3 {
			s.new++
		}
		s.hour += float64(x.DepositsLastHour)
		s.logAmount += math.Log(x.AmountMajor)
	}
	for _, f := range []*float64{&s.card, &s.bank, &s.major, &s.firstPayment, &s.new, &s.hour, &s.logAmount} {
		*f /= s.n
	}
	return s
}

// The dataset shows the patterns it is documented to have, and every sample is a payment that
// could happen.
func TestGeneratedPaymentsFollowTheDocumentedProcess(t *testing.T) {
	samples, err := fraud.Generate(3, 40_000)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range samples {
		switch {
		case s.AmountMajor < 1 || math.Abs(math.Round(s.AmountMajor*100)-s.AmountMajor*100) > 1e-6:
			t.Fatalf("sample %d: amount %v is not at least 1 in cents", i, s.AmountMajor)
		case s.AccountAgeDays < 0 || s.DepositsLastHour < 0 || s.DepositsLastHour > s.DepositsLastDay:
			t.Fatalf("sample %d: age %v, %d deposits in the last hour of %d in the day", i, s.AccountAgeDays, s.DepositsLastHour, s.DepositsLastDay)
		case s.AccountAgeDays == 0 && (s.DepositsLastDay > 0 || s.AmountLastDayMajor > 0):
			t.Fatalf("sample %d: a first payment has history %+v", i, s.Features)
		case (s.DepositsLastDay == 0) != (s.AmountLastDayMajor == 0):
			t.Fatalf("sample %d: %d deposits in the day summing to %v", i, s.DepositsLastDay, s.AmountLastDayMajor)
		case len(s.Currency) != 3 || strings.ToUpper(s.Currency) != s.Currency:
			t.Fatalf("sample %d: currency %q", i, s.Currency)
		}
	}
	honest, bad := classStats(samples, false), classStats(samples, true)
	// 4% fraud, 2% of it unreported, plus 0.3% of honest payments charged back: 4.2% labelled fraud.
	if rate := bad.n / float64(len(samples)); rate < 0.037 || rate > 0.047 {
		t.Errorf("labelled fraud rate %.4f, want about 0.042", rate)
	}
	checks := []struct {
		what           string
		honest, fraudy float64
		fraudHigher    bool
	}{
		{"deposits in the last hour", honest.hour, bad.hour, true},
		{"share of new accounts", honest.new, bad.new, true},
		{"share of first payments", honest.firstPayment, bad.firstPayment, true},
		{"share of cards", honest.card, bad.card, true},
		{"share of bank transfers", honest.bank, bad.bank, false},
		{"share of major currencies", honest.major, bad.major, false},
	}
	for _, c := range checks {
		if (c.fraudy > c.honest) != c.fraudHigher {
			t.Errorf("%s: fraud %.3f, honest %.3f", c.what, c.fraudy, c.honest)
		}
	}
	if honest.major < 0.9 || bad.major > 0.8 {
		t.Errorf("major currencies: honest %.3f (want ≈ 0.93), fraud %.3f (want ≈ 0.64)", honest.major, bad.major)
	}
	t.Logf("honest %+v", honest)
	t.Logf("fraud  %+v", bad)
}
