package model

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/bourse-dev/bourse/pkg/errs"
)

func randBatch(r *rand.Rand, n, dim, classes int, zeroFrac float64) ([]float32, []int32) {
	x := make([]float32, n*dim)
	for i := range x {
		if r.Float64() >= zeroFrac {
			x[i] = float32(r.NormFloat64())
		}
	}
	y := make([]int32, n)
	for i := range y {
		y[i] = int32(r.IntN(classes))
	}
	return x, y
}

func mustNew(t testing.TB, spec Spec) Model {
	t.Helper()
	m, err := New(spec)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// refLoss is the mean cross-entropy computed naively in float64 from the layout, independent of the
// kernels: the reference the finite differences are taken on.
func refLoss(spec Spec, params []float64, x []float32, y []int32) float64 {
	layers := Layout(spec)
	n := len(y)
	var loss float64
	for i := range n {
		a := make([]float64, spec.Inputs)
		for k := range a {
			a[k] = float64(x[i*spec.Inputs+k])
		}
		for li, l := range layers {
			z := make([]float64, l.Out)
			for j := range z {
				s := params[l.BOffset+j]
				for k := range l.In {
					s += a[k] * params[l.WOffset+k*l.Out+j]
				}
				if li < len(layers)-1 {
					s = math.Max(s, 0)
				}
				z[j] = s
			}
			a = z
		}
		m := a[0]
		for _, v := range a {
			m = math.Max(m, v)
		}
		var sum float64
		for _, v := range a {
			sum += math.Exp(v - m)
		}
		loss += math.Log(sum) - (a[y[i]] - m)
	}
	return loss / float64(n)
}

// TestGradientMatchesFiniteDifferences checks every parameter's analytic gradient against a central
// difference of an independent float64 implementation of the loss, for an MLP and logreg, with
// batch sizes that exercise the four-row kernels and their remainders and inputs with zeros.
func TestGradientMatchesFiniteDifferences(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec Spec
		n    int
	}{
		{"mlp", Spec{Kind: KindMLP, Inputs: 7, Hidden: []int{6, 5}, Classes: 4}, 11},
		{"mlp-batch4", Spec{Kind: KindMLP, Inputs: 9, Hidden: []int{3}, Classes: 3}, 4},
		{"logreg", Spec{Kind: KindLogReg, Inputs: 6, Classes: 3}, 9},
		{"logreg-2", Spec{Kind: KindLogReg, Inputs: 5, Classes: 2}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			m := mustNew(t, tc.spec)
			params := make([]float32, m.NumParams())
			m.Init(params, 3)
			for i := range params { // non-zero biases too, so their gradient matters
				params[i] += float32(0.1 * r.NormFloat64())
			}
			x, y := randBatch(r, tc.n, tc.spec.Inputs, tc.spec.Classes, 0.3)
			grad := make([]float32, m.NumParams())
			loss := m.LossAndGrad(params, x, y, grad)

			p64 := make([]float64, len(params))
			for i, v := range params {
				p64[i] = float64(v)
			}
			if want := refLoss(tc.spec, p64, x, y); math.Abs(float64(loss)-want) > 1e-5*math.Max(1, want) {
				t.Fatalf("loss %v, reference %v", loss, want)
			}
			const h = 1e-5
			for i := range p64 {
				orig := p64[i]
				p64[i] = orig + h
				up := refLoss(tc.spec, p64, x, y)
				p64[i] = orig - h
				down := refLoss(tc.spec, p64, x, y)
				p64[i] = orig
				num := (up - down) / (2 * h)
				if diff := math.Abs(num - float64(grad[i])); diff > 1e-4+1e-3*math.Abs(num) {
					t.Fatalf("param %d: analytic %v, numeric %v", i, grad[i], num)
				}
			}
		})
	}
}

// TestDeterministic: the same seed gives the same parameters, and the same parameters and batch the
// same loss and gradient bits, whether the model is fresh or has scratch from a bigger batch.
func TestDeterministic(t *testing.T) {
	spec := Spec{Kind: KindMLP, Inputs: 30, Hidden: []int{17, 9}, Classes: 5}
	a, b := mustNew(t, spec), mustNew(t, spec)
	pa, pb := make([]float32, a.NumParams()), make([]float32, b.NumParams())
	a.Init(pa, 42)
	b.Init(pb, 42)
	if !sameBits(pa, pb) {
		t.Fatal("Init with the same seed gave different parameters")
	}
	pc := make([]float32, a.NumParams())
	a.Init(pc, 43)
	if sameBits(pa, pc) {
		t.Fatal("Init with different seeds gave the same parameters")
	}

	r := rand.New(rand.NewPCG(5, 6))
	big, bigY := randBatch(r, 64, spec.Inputs, spec.Classes, 0.5)
	x, y := randBatch(r, 13, spec.Inputs, spec.Classes, 0.5)
	ga, gb := make([]float32, a.NumParams()), make([]float32, b.NumParams())
	a.LossAndGrad(pa, big, bigY, ga) // leaves scratch sized for 64 rows with other contents
	la := a.LossAndGrad(pa, x, y, ga)
	lb := b.LossAndGrad(pb, x, y, gb)
	if math.Float32bits(la) != math.Float32bits(lb) || !sameBits(ga, gb) {
		t.Fatalf("same batch, different results: loss %v vs %v", la, lb)
	}
	// The gradient buffer is overwritten, not accumulated into.
	for i := range gb {
		gb[i] = 1e6
	}
	b.LossAndGrad(pb, x, y, gb)
	if !sameBits(ga, gb) {
		t.Fatal("LossAndGrad accumulated into grad instead of overwriting it")
	}
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// TestPredictMatchesLogits: Predict's classes are the arg-max of a naive forward pass, over more rows
// than one internal chunk.
func TestPredictMatchesLogits(t *testing.T) {
	spec := Spec{Kind: KindMLP, Inputs: 12, Hidden: []int{10}, Classes: 6}
	m := mustNew(t, spec)
	params := make([]float32, m.NumParams())
	m.Init(params, 9)
	r := rand.New(rand.NewPCG(7, 8))
	n := predictChunk*2 + 37
	x, _ := randBatch(r, n, spec.Inputs, spec.Classes, 0.2)
	got := make([]int32, n)
	m.Predict(params, x, got)
	layers := Layout(spec)
	classes := map[int32]int{}
	for i := range n {
		a := make([]float64, spec.Inputs)
		for k := range a {
			a[k] = float64(x[i*spec.Inputs+k])
		}
		for li, l := range layers {
			z := make([]float64, l.Out)
			for j := range z {
				s := float64(params[l.BOffset+j])
				for k := range l.In {
					s += a[k] * float64(params[l.WOffset+k*l.Out+j])
				}
				if li < len(layers)-1 {
					s = math.Max(s, 0)
				}
				z[j] = s
			}
			a = z
		}
		best := 0
		for j := range a {
			if a[j] > a[best] {
				best = j
			}
		}
		if got[i] != int32(best) {
			t.Fatalf("row %d: Predict %d, reference %d (logits %v)", i, got[i], best, a)
		}
		classes[got[i]]++
	}
	if len(classes) < 2 {
		t.Fatalf("every row predicted the same class %v: the check proves little", classes)
	}
}

func TestNewRejectsBadSpecs(t *testing.T) {
	for _, tc := range []struct {
		spec  Spec
		field string
	}{
		{Spec{Kind: "cnn", Inputs: 4, Classes: 2}, "kind"},
		{Spec{Inputs: 4, Classes: 2}, "kind"},
		{Spec{Kind: KindMLP, Inputs: 4, Classes: 2}, "hidden"},
		{Spec{Kind: KindLogReg, Inputs: 4, Hidden: []int{3}, Classes: 2}, "hidden"},
		{Spec{Kind: KindLogReg, Inputs: 0, Classes: 2}, "inputs"},
		{Spec{Kind: KindLogReg, Inputs: 4, Classes: 1}, "classes"},
		{Spec{Kind: KindMLP, Inputs: 4, Hidden: []int{3, 0}, Classes: 2}, "hidden[1]"},
		{Spec{Kind: KindMLP, Inputs: MaxInputs, Hidden: []int{MaxWidth, MaxWidth}, Classes: 2}, "hidden"},
	} {
		_, err := New(tc.spec)
		if err == nil {
			t.Errorf("%+v: accepted", tc.spec)
			continue
		}
		if errs.KindOf(err) != errs.KindInvalidArgument || !strings.HasPrefix(err.Error(), tc.field+":") {
			t.Errorf("%+v: %v, want InvalidArgument naming %s", tc.spec, err, tc.field)
		}
	}
}

func TestLayoutIsContiguous(t *testing.T) {
	spec := Spec{Kind: KindMLP, Inputs: 784, Hidden: []int{256, 128}, Classes: 10}
	m := mustNew(t, spec)
	if want := 784*256 + 256 + 256*128 + 128 + 128*10 + 10; m.NumParams() != want {
		t.Fatalf("NumParams %d, want %d", m.NumParams(), want)
	}
	off := 0
	for _, l := range Layout(spec) {
		if l.WOffset != off || l.BOffset != off+l.In*l.Out {
			t.Fatalf("layer %+v does not follow offset %d", l, off)
		}
		off = l.BOffset + l.Out
	}
}
