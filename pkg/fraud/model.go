package fraud

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/bourse-dev/bourse/pkg/onnx"
)

// Model is a logistic regression over Vector: P(fraud) = sigmoid(Weights·v + Bias). The weights are
// float32 because the ONNX model carries them so; Probability computes with exactly these.
type Model struct {
	Weights [NumFeatures]float32
	Bias    float32
}

// FitOptions tune Fit: full-batch gradient descent on the mean log loss plus L2·|w|²/2, over
// features standardized to mean 0 and variance 1 (folded back into the weights at the end).
type FitOptions struct {
	Epochs       int
	LearningRate float64
	L2           float64
}

// DefaultFit is what the `fraud` model of make run is fitted with.
var DefaultFit = FitOptions{Epochs: 1000, LearningRate: 2, L2: 1e-3}

// Fit fits the logistic regression in float64, in a fixed order (samples in order, one full-batch
// step per epoch), so the same samples and options give the same model.
func Fit(samples []Sample, opts FitOptions) (Model, error) {
	switch {
	case len(samples) == 0:
		return Model{}, errors.New("fraud: fit: no samples")
	case opts.Epochs <= 0 || opts.Epochs > 1_000_000:
		return Model{}, fmt.Errorf("fraud: fit: epochs %d is outside 1-1000000", opts.Epochs)
	case !(opts.LearningRate > 0) || math.IsInf(opts.LearningRate, 0):
		return Model{}, fmt.Errorf("fraud: fit: learning rate %v must be positive", opts.LearningRate)
	case !(opts.L2 >= 0) || math.IsInf(opts.L2, 0):
		return Model{}, fmt.Errorf("fraud: fit: L2 %v must be ≥ 0", opts.L2)
	}
	n := len(samples)
	x := make([][NumFeatures]float64, n)
	y := make([]float64, n)
	var mean, std [NumFeatures]float64
	for i, s := range samples {
		for j, v := range s.Vector() {
			x[i][j] = float64(v)
			mean[j] += float64(v)
		}
		if s.Fraud {
			y[i] = 1
		}
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	for i := range x {
		for j := range x[i] {
			d := x[i][j] - mean[j]
			std[j] += d * d
		}
	}
	for j := range std {
		// A constant feature carries nothing: leave it unscaled (its weight stays 0).
		if std[j] = math.Sqrt(std[j] / float64(n)); std[j] == 0 {
			std[j] = 1
		}
	}
	for i := range x {
		for j := range x[i] {
			x[i][j] = (x[i][j] - mean[j]) / std[j]
		}
	}
	var w [NumFeatures]float64
	var b float64
	for range opts.Epochs {
		var gw [NumFeatures]float64
		var gb float64
		for i := range x {
			e := sigmoid(dot(&w, &x[i])+b) - y[i]
			for j := range gw {
				gw[j] += e * x[i][j]
			}
			gb += e
		}
		for j := range w {
			w[j] -= opts.LearningRate * (gw[j]/float64(n) + opts.L2*w[j])
		}
		b -= opts.LearningRate * gb / float64(n)
	}
	var m Model
	for j := range w {
		m.Weights[j] = float32(w[j] / std[j])
		b -= w[j] * mean[j] / std[j]
	}
	m.Bias = float32(b)
	return m, nil
}

func dot(w, x *[NumFeatures]float64) float64 {
	var s float64
	for j := range w {
		s += w[j] * x[j]
	}
	return s
}

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

// Probability is the model's fraud probability for a feature vector (as from Features.Vector).
func (m Model) Probability(v []float32) float64 {
	z := float64(m.Bias)
	for j, w := range m.Weights {
		z += float64(w) * float64(v[j])
	}
	return sigmoid(z)
}

// Dense is the model as a network for pkg/onnx: one layer of NumFeatures inputs and a sigmoid head,
// input InputName and output OutputName.
func (m Model) Dense() onnx.Dense {
	return onnx.Dense{
		Layers: []onnx.Layer{{
			In: NumFeatures, Out: 1,
			W: slices.Clone(m.Weights[:]), B: []float32{m.Bias},
		}},
		Head:       onnx.Sigmoid,
		InputName:  InputName,
		OutputName: OutputName,
	}
}

// LogLoss is the mean negative log-likelihood of the labels under the model.
func (m Model) LogLoss(samples []Sample) float64 {
	var sum float64
	for _, s := range samples {
		p := min(max(m.Probability(s.Vector()), 1e-15), 1-1e-15)
		if s.Fraud {
			sum -= math.Log(p)
		} else {
			sum -= math.Log(1 - p)
		}
	}
	return sum / float64(len(samples))
}

// AUC is the area under the ROC curve of the model's scores on samples: the probability that a
// random fraud scores above a random honest payment (ties count half). It is NaN without both.
func (m Model) AUC(samples []Sample) float64 {
	type scored struct {
		p     float64
		fraud bool
	}
	all := make([]scored, len(samples))
	var pos, neg float64
	for i, s := range samples {
		all[i] = scored{m.Probability(s.Vector()), s.Fraud}
		if s.Fraud {
			pos++
		} else {
			neg++
		}
	}
	if pos == 0 || neg == 0 {
		return math.NaN()
	}
	slices.SortFunc(all, func(a, b scored) int {
		switch {
		case a.p < b.p:
			return -1
		case a.p > b.p:
			return 1
		}
		return 0
	})
	// Mann-Whitney: sum of the ranks of the fraud samples, equal scores sharing their mean rank.
	var rankSum float64
	for i := 0; i < len(all); {
		j := i
		for j < len(all) && all[j].p == all[i].p {
			j++
		}
		mid := float64(i+j+1) / 2 // ranks i+1..j
		for k := i; k < j; k++ {
			if all[k].fraud {
				rankSum += mid
			}
		}
		i = j
	}
	return (rankSum - pos*(pos+1)/2) / (pos * neg)
}
