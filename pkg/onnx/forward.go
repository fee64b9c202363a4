package onnx

import (
	"fmt"
	"math"
)

// Forward computes what the model computes, in Go: for x of batch rows of Inputs() values (row-major),
// the probabilities (batch*Classes() values) and the predicted labels (batch values). Sums and the
// head are evaluated in float64 and rounded to float32 once, so it is the exact answer an onnxruntime
// run (float32 throughout) approximates.
func (d *Dense) Forward(x []float32, batch int) (probs []float32, labels []int64, err error) {
	if err := d.Validate(); err != nil {
		return nil, nil, err
	}
	// batch > len(x) first, so batch*Inputs cannot overflow into a match.
	if batch <= 0 || batch > len(x) || len(x) != batch*d.Inputs() {
		return nil, nil, fmt.Errorf("onnx: forward: %d values for %d rows of %d", len(x), batch, d.Inputs())
	}
	cur := make([]float64, len(x))
	for i, v := range x {
		cur[i] = float64(v)
	}
	for _, l := range d.Layers {
		next := make([]float64, batch*l.Out)
		for r := range batch {
			in, out := cur[r*l.In:(r+1)*l.In], next[r*l.Out:(r+1)*l.Out]
			for j := range out {
				out[j] = float64(l.B[j])
			}
			for i, v := range in {
				if v == 0 {
					continue
				}
				row := l.W[i*l.Out : (i+1)*l.Out]
				for j, w := range row {
					out[j] += v * float64(w)
				}
			}
			if l.Activation == ReLU {
				for j, v := range out {
					out[j] = max(v, 0)
				}
			}
		}
		cur = next
	}
	classes := d.Classes()
	probs = make([]float32, batch*classes)
	labels = make([]int64, batch)
	for r := range batch {
		logits := cur[r*classes : (r+1)*classes]
		switch d.Head {
		case Sigmoid:
			probs[r] = float32(1 / (1 + math.Exp(-logits[0])))
			if logits[0] > 0 {
				labels[r] = 1
			}
		case Softmax:
			best := 0
			for j, v := range logits {
				if v > logits[best] {
					best = j
				}
			}
			labels[r] = int64(best)
			var sum float64
			for _, v := range logits {
				sum += math.Exp(v - logits[best])
			}
			for j, v := range logits {
				probs[r*classes+j] = float32(math.Exp(v-logits[best]) / sum)
			}
		}
	}
	return probs, labels, nil
}
