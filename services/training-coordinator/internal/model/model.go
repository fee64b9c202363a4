// Package model holds the models the trainer fits: a multi-layer perceptron (ReLU hidden layers,
// softmax cross-entropy) and logistic regression (an MLP without hidden layers), as float32 kernels
// over one flat parameter vector. The flat vector is what the optimizer updates, what the ring
// allreduce sums and what a checkpoint stores, so its layout is part of the API (see Layout).
//
// Every kernel is single-threaded and runs its loops in a fixed order: the same parameters and batch
// give the same loss and gradient bits on every run, which checkpoint/resume equivalence relies on.
package model

import (
	"fmt"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// Kinds of model.
const (
	KindMLP    = "mlp"
	KindLogReg = "logreg"
)

// Bounds on a spec, so a request cannot make the trainer allocate without limit.
const (
	MaxInputs    = 1 << 16
	MaxClasses   = 1 << 12
	MaxLayers    = 8
	MaxWidth     = 1 << 13
	MaxNumParams = 64 << 20
)

// Spec describes a model. Logistic regression has no hidden layers.
type Spec struct {
	Kind    string // KindMLP or KindLogReg
	Inputs  int
	Hidden  []int // hidden layer widths (MLP only; at least one)
	Classes int   // ≥ 2: the output is a softmax over the classes
}

// Model computes the loss, gradient and predictions of one architecture over a flat parameter
// vector. Implementations hold no mutable state visible to callers apart from scratch buffers, so a
// Model must not be used by two goroutines at once; make one per goroutine with New.
type Model interface {
	Spec() Spec
	NumParams() int
	// Init writes initial parameters (He-uniform weights, zero biases), a function of seed only.
	Init(params []float32, seed int64)
	// LossAndGrad returns the mean cross-entropy over the batch (x is n×Inputs row-major, y its
	// labels in [0, Classes)) and writes the mean gradient into grad (len NumParams, overwritten).
	// Deterministic: same inputs give the same bits.
	LossAndGrad(params, x []float32, y []int32, grad []float32) float32
	// Predict writes the arg-max class of each row of x into out (len n).
	Predict(params, x []float32, out []int32)
}

// Layer is one dense layer's place in the flat parameter vector: W is In×Out row-major (row i holds
// the weights from input i to every output) starting at WOffset, then the Out biases at BOffset.
// Layers follow each other; hidden layers apply ReLU, the last one is the logits.
type Layer struct {
	In, Out          int
	WOffset, BOffset int
}

// Layout returns the dense layers of spec in order (spec must be valid).
func Layout(spec Spec) []Layer {
	widths := append(append([]int{spec.Inputs}, spec.Hidden...), spec.Classes)
	layers := make([]Layer, 0, len(widths)-1)
	off := 0
	for i := 0; i+1 < len(widths); i++ {
		in, out := widths[i], widths[i+1]
		layers = append(layers, Layer{In: in, Out: out, WOffset: off, BOffset: off + in*out})
		off += in*out + out
	}
	return layers
}

// Validate checks a spec; the error names the offending field.
func (s Spec) Validate() error {
	switch s.Kind {
	case KindMLP:
		if len(s.Hidden) == 0 {
			return errs.Invalid("hidden", "an mlp needs at least one hidden layer")
		}
	case KindLogReg:
		if len(s.Hidden) != 0 {
			return errs.Invalid("hidden", "logreg has no hidden layers, got %d", len(s.Hidden))
		}
	case "":
		return errs.Invalid("kind", "missing (want %q or %q)", KindMLP, KindLogReg)
	default:
		return errs.Invalid("kind", "unknown model kind %q (want %q or %q)", s.Kind, KindMLP, KindLogReg)
	}
	if s.Inputs < 1 || s.Inputs > MaxInputs {
		return errs.Invalid("inputs", "%d is outside 1-%d", s.Inputs, MaxInputs)
	}
	if s.Classes < 2 || s.Classes > MaxClasses {
		return errs.Invalid("classes", "%d is outside 2-%d", s.Classes, MaxClasses)
	}
	if len(s.Hidden) > MaxLayers {
		return errs.Invalid("hidden", "%d hidden layers, at most %d", len(s.Hidden), MaxLayers)
	}
	for i, w := range s.Hidden {
		if w < 1 || w > MaxWidth {
			return errs.Invalid(fmt.Sprintf("hidden[%d]", i), "%d is outside 1-%d", w, MaxWidth)
		}
	}
	n := 0
	for _, l := range Layout(s) {
		n += l.In*l.Out + l.Out
	}
	if n > MaxNumParams {
		return errs.Invalid("hidden", "%d parameters, at most %d", n, MaxNumParams)
	}
	return nil
}

// New validates spec and returns its model.
func New(spec Spec) (Model, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	spec.Hidden = append([]int(nil), spec.Hidden...)
	return newDense(spec), nil
}
