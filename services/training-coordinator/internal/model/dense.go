package model

import (
	"math"
	"math/rand/v2"
)

// dense is a stack of fully connected layers, ReLU between them, softmax cross-entropy on top; with
// no hidden layers it is multinomial logistic regression.
type dense struct {
	spec   Spec
	layers []Layer
	nparam int

	// Scratch, grown to the largest batch seen (the caller bounds the batch size): acts[l] is the
	// input of layer l (acts[0] aliases x), acts[len(layers)] the logits; delta and deltaPrev hold the
	// loss gradient with respect to a layer's output while walking back.
	acts      [][]float32
	delta     []float32
	deltaPrev []float32
	xt        []float32 // a layer input transposed (In×n), for the weight gradient
	nz        sparse
}

func newDense(spec Spec) *dense {
	d := &dense{spec: spec, layers: Layout(spec)}
	last := d.layers[len(d.layers)-1]
	d.nparam = last.BOffset + last.Out
	d.acts = make([][]float32, len(d.layers)+1)
	return d
}

func (d *dense) Spec() Spec {
	s := d.spec
	s.Hidden = append([]int(nil), s.Hidden...)
	return s
}

func (d *dense) NumParams() int { return d.nparam }

// Init draws He-uniform weights for layers feeding a ReLU and Glorot-uniform ones for the logits,
// from a PCG stream per layer keyed by (seed, layer); biases start at zero.
func (d *dense) Init(params []float32, seed int64) {
	params = params[:d.nparam]
	for li, l := range d.layers {
		r := rand.New(rand.NewPCG(uint64(seed), uint64(li)+1))
		limit := math.Sqrt(6 / float64(l.In))
		if li == len(d.layers)-1 {
			limit = math.Sqrt(6 / float64(l.In+l.Out))
		}
		w := params[l.WOffset : l.WOffset+l.In*l.Out]
		for i := range w {
			w[i] = float32((2*r.Float64() - 1) * limit)
		}
		clear(params[l.BOffset : l.BOffset+l.Out])
	}
}

func grow(buf []float32, n int) []float32 {
	if cap(buf) < n {
		return make([]float32, n)
	}
	return buf[:n]
}

// forward runs the n rows of x through every layer, leaving the logits in acts[len(layers)].
func (d *dense) forward(params, x []float32, n int) {
	d.acts[0] = x[:n*d.spec.Inputs]
	for li, l := range d.layers {
		out := grow(d.acts[li+1], n*l.Out)
		d.acts[li+1] = out
		w := params[l.WOffset : l.WOffset+l.In*l.Out]
		b := params[l.BOffset : l.BOffset+l.Out]
		matMulBias(d.acts[li], w, b, out, n, l.In, l.Out, &d.nz)
		if li < len(d.layers)-1 {
			for i, v := range out {
				if v < 0 {
					out[i] = 0
				}
			}
		}
	}
}

func (d *dense) LossAndGrad(params, x []float32, y []int32, grad []float32) float32 {
	n := len(y)
	params, grad = params[:d.nparam], grad[:d.nparam]
	if n == 0 {
		clear(grad)
		return 0
	}
	d.forward(params, x, n)
	classes := d.spec.Classes
	logits := d.acts[len(d.layers)]
	d.delta = grow(d.delta, n*classes)
	// Softmax cross-entropy; delta = (softmax − onehot)/n is the gradient of the mean loss.
	var loss float64
	inv := 1 / float64(n)
	for i := range n {
		z := logits[i*classes : (i+1)*classes]
		dz := d.delta[i*classes : (i+1)*classes]
		m := z[0]
		for _, v := range z[1:] {
			m = max(m, v)
		}
		var sum float64
		for j, v := range z {
			e := math.Exp(float64(v - m))
			dz[j] = float32(e)
			sum += e
		}
		label := int(y[i])
		loss += math.Log(sum) - float64(z[label]-m)
		s := inv / sum
		for j := range dz {
			dz[j] = float32(float64(dz[j]) * s)
		}
		dz[label] -= float32(inv)
	}
	for li := len(d.layers) - 1; li >= 0; li-- {
		l := d.layers[li]
		in := d.acts[li]
		d.xt = grow(d.xt, n*l.In)
		transpose(in, d.xt, n, l.In)
		weightGrad(d.xt, d.delta, grad[l.WOffset:l.WOffset+l.In*l.Out], n, l.In, l.Out, &d.nz)
		biasGrad(d.delta, grad[l.BOffset:l.BOffset+l.Out], n, l.Out)
		if li == 0 {
			break
		}
		// Back through W and the ReLU that produced this layer's input: where the input was
		// clamped to zero the gradient is zero.
		d.deltaPrev = grow(d.deltaPrev, n*l.In)
		w := params[l.WOffset : l.WOffset+l.In*l.Out]
		backInput(d.delta, w, in, d.deltaPrev, n, l.In, l.Out)
		d.delta, d.deltaPrev = d.deltaPrev, d.delta
	}
	return float32(loss * inv)
}

// predictChunk bounds the scratch Predict uses, whatever the number of rows asked for.
const predictChunk = 256

func (d *dense) Predict(params, x []float32, out []int32) {
	params = params[:d.nparam]
	classes, dim := d.spec.Classes, d.spec.Inputs
	for lo := 0; lo < len(out); lo += predictChunk {
		n := min(predictChunk, len(out)-lo)
		d.forward(params, x[lo*dim:(lo+n)*dim], n)
		logits := d.acts[len(d.layers)]
		for i := range n {
			z := logits[i*classes : (i+1)*classes]
			best := 0
			for j, v := range z {
				if v > z[best] {
					best = j
				}
			}
			out[lo+i] = int32(best)
		}
	}
}
