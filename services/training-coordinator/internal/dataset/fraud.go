package dataset

import (
	"math"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/pkg/fraud"
)

// Sizes of the synthetic fraud splits (before Options.Limit): the train split is the size the
// `fraud` model of make run is fitted on.
const (
	FraudTrainSamples = 50_000
	FraudTestSamples  = 10_000
)

// loadFraud draws pkg/fraud's synthetic payments from opts.Seed: the first FraudTrainSamples are the
// train split, the next FraudTestSamples the test split (a longer draw starts with a shorter one, so
// the splits do not depend on each other's size). Label 1 is fraud. Features are standardized with the
// train split's mean and deviation, recorded in Mean and Std so an export can fold them back and serve
// a model that takes pkg/fraud's raw Vector, as payment sends it.
func loadFraud(opts Options) (train, test Dataset, err error) {
	if opts.Seed < 0 {
		return Dataset{}, Dataset{}, errs.Invalid("seed", "%d is negative", opts.Seed)
	}
	samples, err := fraud.Generate(uint64(opts.Seed), FraudTrainSamples+FraudTestSamples)
	if err != nil {
		return Dataset{}, Dataset{}, errs.Wrap(errs.KindInternal, err, "dataset fraud")
	}
	ntrain, ntest := FraudTrainSamples, FraudTestSamples
	if opts.Limit > 0 {
		ntrain, ntest = min(ntrain, opts.Limit), min(ntest, opts.Limit)
	}
	train = fraudSplit(samples[:ntrain])
	test = fraudSplit(samples[FraudTrainSamples : FraudTrainSamples+ntest])
	mean, std := moments(train)
	standardize(train, mean, std)
	standardize(test, mean, std)
	train.Mean, train.Std = mean, std
	test.Mean, test.Std = mean, std
	return train, test, nil
}

func fraudSplit(samples []fraud.Sample) Dataset {
	d := Dataset{X: make([]float32, 0, len(samples)*fraud.NumFeatures), Y: make([]int32, len(samples)),
		N: len(samples), Dim: fraud.NumFeatures, Classes: 2}
	for i, s := range samples {
		d.X = append(d.X, s.Vector()...)
		if s.Fraud {
			d.Y[i] = 1
		}
	}
	return d
}

// moments are each feature's mean and standard deviation over d (deviation 1 for a constant one).
func moments(d Dataset) (mean, std []float32) {
	m, v := make([]float64, d.Dim), make([]float64, d.Dim)
	for i := range d.N {
		for j, x := range d.Row(i) {
			m[j] += float64(x)
		}
	}
	for j := range m {
		m[j] /= float64(d.N)
	}
	for i := range d.N {
		for j, x := range d.Row(i) {
			dx := float64(x) - m[j]
			v[j] += dx * dx
		}
	}
	mean, std = make([]float32, d.Dim), make([]float32, d.Dim)
	for j := range m {
		mean[j] = float32(m[j])
		std[j] = float32(math.Sqrt(v[j] / float64(d.N)))
		if std[j] == 0 {
			std[j] = 1
		}
	}
	return mean, std
}

func standardize(d Dataset, mean, std []float32) {
	for i := range d.N {
		row := d.Row(i)
		for j := range row {
			row[j] = (row[j] - mean[j]) / std[j]
		}
	}
}
