package fraud_test

import (
	"testing"

	"github.com/bourse-dev/bourse/pkg/fraud"
)

func BenchmarkGenerate10k(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fraud.Generate(1, 10_000); err != nil {
			b.Fatal(err)
		}
	}
}

// A fit of 100 epochs over 10,000 samples, feature extraction included (the default model runs
// 1,000 epochs over 50,000).
func BenchmarkFit10kSamples100Epochs(b *testing.B) {
	samples, err := fraud.Generate(1, 10_000)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fraud.Fit(samples, fraud.FitOptions{Epochs: 100, LearningRate: 2, L2: 1e-3}); err != nil {
			b.Fatal(err)
		}
	}
}
