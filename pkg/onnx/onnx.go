// Package onnx writes dense feed-forward networks as ONNX models that onnxruntime (and so the
// inference service) loads: a stack of fully connected layers, each y = act(x·W + b), then a softmax
// or sigmoid head. It is the one ONNX writer of the repository: the fraud model generator and the
// training service's export both use it.
//
// The model declares IR version 10 and opset 21 (default domain). Its input is FP32 [batch, in] with a
// dynamic batch dimension named "batch"; its output is FP32 [batch, classes] for a softmax head or
// FP32 [batch, 1] for a sigmoid head, plus an optional INT64 [batch] label (argmax of the softmax, or
// logit > 0 for the sigmoid). Weights are initializers stored as raw little-endian float32, so the
// same network always encodes to the same bytes.
//
// Example: a 4-16-3 classifier exported into an inference model repository.
//
//	net := onnx.Dense{
//		Layers: []onnx.Layer{
//			{In: 4, Out: 16, W: w1, B: b1, Activation: onnx.ReLU}, // w1: 4*16 values, row-major [in][out]
//			{In: 16, Out: 3, W: w2, B: b2},
//		},
//		Head:       onnx.Softmax,
//		InputName:  "x",
//		OutputName: "probabilities",
//		LabelName:  "label", // optional
//	}
//	if err := onnx.WriteFile(filepath.Join(repo, "iris-mlp", "3", "model.onnx"), net); err != nil {
//		return err
//	}
//	probs, labels, err := net.Forward(x, batch) // the same computation in Go, for parity checks
package onnx

import (
	"errors"
	"fmt"
	"math"
)

// Versions the writer declares. onnxruntime 1.24 accepts IR ≤ 13 and opset ≤ 25.
const (
	IRVersion = 10
	Opset     = 21
)

// MaxParams bounds the weights and biases of one network: a protobuf message cannot exceed 2 GiB,
// and a model this size (1 GiB of float32) is far past anything the services serve.
const MaxParams = 1 << 28

// Activation follows a layer's affine map.
type Activation int

const (
	None Activation = iota // identity
	ReLU                   // max(0, x)
)

func (a Activation) String() string {
	switch a {
	case None:
		return "none"
	case ReLU:
		return "relu"
	}
	return fmt.Sprintf("Activation(%d)", int(a))
}

// Head turns the last layer's outputs (logits) into the model's output.
type Head int

const (
	// Softmax over the last layer's outputs (≥ 2): class probabilities, FP32 [batch, classes].
	Softmax Head = iota + 1
	// Sigmoid of the last layer's single output: a probability, FP32 [batch, 1].
	Sigmoid
)

func (h Head) String() string {
	switch h {
	case Softmax:
		return "softmax"
	case Sigmoid:
		return "sigmoid"
	}
	return fmt.Sprintf("Head(%d)", int(h))
}

// Layer is one fully connected layer: y = Activation(x·W + B) for x of length In.
type Layer struct {
	In, Out    int
	W          []float32 // In*Out, row-major [In][Out]: W[i*Out+j] weighs input i into output j
	B          []float32 // Out
	Activation Activation
}

// Dense is a feed-forward network and the names of its tensors in the model.
type Dense struct {
	Layers []Layer
	Head   Head
	// InputName and OutputName name the model's input and probability output; required.
	InputName, OutputName string
	// LabelName, when set, adds an INT64 [batch] output with the predicted class.
	LabelName string
	// DocString goes into the model (free text: what it is, how it was made). Optional.
	DocString string
	// Metadata goes into the model's metadata_props, in key order (onnxruntime reports it as the
	// model's custom metadata). Optional.
	Metadata map[string]string
}

// Inputs is the network's input width.
func (d *Dense) Inputs() int { return d.Layers[0].In }

// Classes is the width of the probability output: the last layer's width for a softmax head, 1 for
// a sigmoid head.
func (d *Dense) Classes() int { return d.Layers[len(d.Layers)-1].Out }

// Validate reports every way the network cannot be written, joined.
func (d *Dense) Validate() error {
	var problems []error
	bad := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	if len(d.Layers) == 0 {
		return errors.New("onnx: a network needs at least one layer")
	}
	params := 0
	for i, l := range d.Layers {
		if l.In <= 0 || l.Out <= 0 {
			bad("layer %d: shape %d×%d: both must be positive", i, l.In, l.Out)
			continue
		}
		if l.In > MaxParams || l.Out > MaxParams || l.In*l.Out > MaxParams-params {
			bad("layer %d: more than %d parameters in the network", i, MaxParams)
			return errors.Join(problems...)
		}
		params += l.In*l.Out + l.Out
		if len(l.W) != l.In*l.Out {
			bad("layer %d: W has %d values, want In*Out = %d", i, len(l.W), l.In*l.Out)
		}
		if len(l.B) != l.Out {
			bad("layer %d: B has %d values, want Out = %d", i, len(l.B), l.Out)
		}
		if i > 0 && d.Layers[i-1].Out != l.In {
			bad("layer %d: In = %d, but layer %d has Out = %d", i, l.In, i-1, d.Layers[i-1].Out)
		}
		if l.Activation != None && l.Activation != ReLU {
			bad("layer %d: unknown activation %v", i, l.Activation)
		}
		if j := firstNonFinite(l.W); j >= 0 {
			bad("layer %d: W[%d] is %v", i, j, l.W[j])
		}
		if j := firstNonFinite(l.B); j >= 0 {
			bad("layer %d: B[%d] is %v", i, j, l.B[j])
		}
	}
	last := d.Layers[len(d.Layers)-1].Out
	switch d.Head {
	case Softmax:
		if last < 2 {
			bad("softmax head: the last layer has %d output, want ≥ 2 (use Sigmoid for one)", last)
		}
	case Sigmoid:
		if last != 1 {
			bad("sigmoid head: the last layer has %d outputs, want 1", last)
		}
	default:
		bad("unknown head %v", d.Head)
	}
	names := map[string]string{}
	for _, n := range []struct{ field, name string }{
		{"InputName", d.InputName}, {"OutputName", d.OutputName}, {"LabelName", d.LabelName},
	} {
		if n.name == "" {
			if n.field != "LabelName" {
				bad("%s is empty", n.field)
			}
			continue
		}
		if other, ok := names[n.name]; ok {
			bad("%s %q is also %s", n.field, n.name, other)
		}
		if isInternalName(n.name) {
			bad("%s %q is reserved for the model's internal tensors", n.field, n.name)
		}
		names[n.name] = n.field
	}
	if len(problems) > 0 {
		return fmt.Errorf("onnx: %w", errors.Join(problems...))
	}
	return nil
}

func firstNonFinite(v []float32) int {
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return i
		}
	}
	return -1
}
