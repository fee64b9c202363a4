package dataset

import (
	"math"
	"slices"
	"testing"

	"github.com/bourse-dev/bourse/pkg/fraud"
)

// TestLoadFraud: split sizes, the fraud share of pkg/fraud's generator, standardized train features
// (mean 0, deviation 1) that map back to the generator's raw vectors through Mean and Std, the same
// bits for the same seed and other data for another seed.
func TestLoadFraud(t *testing.T) {
	train, test, err := Load(Fraud, Options{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if train.N != FraudTrainSamples || test.N != FraudTestSamples || train.Dim != fraud.NumFeatures || train.Classes != 2 {
		t.Fatalf("train %d test %d dim %d classes %d", train.N, test.N, train.Dim, train.Classes)
	}
	frauds := 0
	for _, y := range train.Y {
		frauds += int(y)
	}
	if rate := float64(frauds) / float64(train.N); rate < 0.02 || rate > 0.07 {
		t.Fatalf("fraud share %.4f, want about %v", rate, fraud.FraudRate)
	}
	m, s := moments(train)
	for j := range m {
		if math.Abs(float64(m[j])) > 1e-3 || (math.Abs(float64(s[j]-1)) > 1e-3 && train.Std[j] != 1) {
			t.Fatalf("feature %d: standardized mean %v deviation %v", j, m[j], s[j])
		}
	}
	raw, err := fraud.Generate(3, FraudTrainSamples+FraudTestSamples)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 1, 777, FraudTestSamples - 1} {
		want := raw[FraudTrainSamples+i]
		for j, v := range want.Vector() {
			if got := test.Row(i)[j]*test.Std[j] + test.Mean[j]; math.Abs(float64(got-v)) > 1e-4*math.Max(1, math.Abs(float64(v))) {
				t.Fatalf("test sample %d feature %d: %v back from standardized, generator %v", i, j, got, v)
			}
		}
		if (test.Y[i] == 1) != want.Fraud {
			t.Fatalf("test sample %d: label %d, generator fraud=%v", i, test.Y[i], want.Fraud)
		}
	}

	again, _, err := Load(Fraud, Options{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(again.X, train.X) || !slices.Equal(again.Y, train.Y) {
		t.Fatal("same seed, different dataset")
	}
	other, _, err := Load(Fraud, Options{Seed: 4, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if other.N != 1000 || slices.Equal(other.X, train.X[:1000*train.Dim]) {
		t.Fatalf("seed 4, limit 1000: %d samples, or seed 3's", other.N)
	}
	if _, _, err := Load(Fraud, Options{Seed: -1}); err == nil {
		t.Fatal("negative seed accepted")
	}
}
