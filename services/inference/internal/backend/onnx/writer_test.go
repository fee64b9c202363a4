package onnx_test

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	onnxw "github.com/bourse-dev/bourse/pkg/onnx"
	"github.com/bourse-dev/bourse/services/inference/internal/modelconfig"
	"github.com/bourse-dev/bourse/services/inference/internal/tensor"
	"github.com/bourse-dev/bourse/services/inference/internal/testutil"
)

// The models pkg/onnx writes load in the real onnxruntime and compute what the Go forward pass
// computes: a softmax MLP with a label output and a sigmoid logistic regression, over several batch
// sizes of random inputs.
func TestWrittenDenseModelsMatchTheGoForwardPass(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 10))
	layer := func(in, out int, act onnxw.Activation) onnxw.Layer {
		l := onnxw.Layer{In: in, Out: out, W: make([]float32, in*out), B: make([]float32, out), Activation: act}
		// He-style scale keeps the logits in a range where the softmax is not saturated everywhere.
		scale := math.Sqrt(2 / float64(in))
		for i := range l.W {
			l.W[i] = float32(r.NormFloat64() * scale)
		}
		for i := range l.B {
			l.B[i] = float32(r.NormFloat64() * 0.1)
		}
		return l
	}
	nets := []struct {
		name string
		net  onnxw.Dense
	}{
		{"mlp", onnxw.Dense{
			Layers:     []onnxw.Layer{layer(20, 32, onnxw.ReLU), layer(32, 16, onnxw.ReLU), layer(16, 10, onnxw.None)},
			Head:       onnxw.Softmax,
			InputName:  "pixels",
			OutputName: "probabilities",
			LabelName:  "digit",
		}},
		{"logistic", onnxw.Dense{
			Layers:     []onnxw.Layer{layer(8, 1, onnxw.None)},
			Head:       onnxw.Sigmoid,
			InputName:  "features",
			OutputName: "probability",
			LabelName:  "fraud",
		}},
	}
	b := testutil.ORT(t)
	for _, c := range nets {
		net := c.net
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "model.onnx")
			if err := onnxw.WriteFile(path, net); err != nil {
				t.Fatal(err)
			}
			cfg := modelconfig.Config{
				Platform:     modelconfig.PlatformONNX,
				MaxBatchSize: 64,
				Inputs:       []modelconfig.TensorSpec{{Name: net.InputName, Datatype: tensor.FP32, Dims: []int64{int64(net.Inputs())}}},
				Outputs: []modelconfig.TensorSpec{
					{Name: net.OutputName, Datatype: tensor.FP32, Dims: []int64{int64(net.Classes())}},
					{Name: net.LabelName, Datatype: tensor.Int64, Dims: []int64{}},
				},
			}
			s, err := b.Load(path, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for _, batch := range []int{1, 7, 64} {
				x := make([]float32, batch*net.Inputs())
				for i := range x {
					x[i] = float32(r.NormFloat64() * 2)
				}
				wantProbs, wantLabels, err := net.Forward(x, batch)
				if err != nil {
					t.Fatal(err)
				}
				out, err := s.Run([]tensor.Tensor{{Name: net.InputName, Datatype: tensor.FP32,
					Shape: []int64{int64(batch), int64(net.Inputs())}, Data: testutil.FP32Bytes(x...)}})
				if err != nil {
					t.Fatal(err)
				}
				if len(out) != 2 {
					t.Fatalf("batch %d: %d outputs", batch, len(out))
				}
				if !slices.Equal(out[0].Shape, []int64{int64(batch), int64(net.Classes())}) || out[0].Datatype != tensor.FP32 {
					t.Fatalf("batch %d: probabilities %s %v", batch, out[0].Datatype, out[0].Shape)
				}
				if !slices.Equal(out[1].Shape, []int64{int64(batch)}) || out[1].Datatype != tensor.Int64 {
					t.Fatalf("batch %d: labels %s %v", batch, out[1].Datatype, out[1].Shape)
				}
				got := testutil.Float32s(out[0].Data)
				worst := 0.0
				for i := range got {
					worst = max(worst, math.Abs(float64(got[i])-float64(wantProbs[i])))
				}
				if worst > 1e-5 {
					t.Errorf("batch %d: probabilities differ from Go's by up to %g (> 1e-5)", batch, worst)
				}
				if labels := testutil.Int64s(out[1].Data); !slices.Equal(labels, wantLabels) {
					t.Errorf("batch %d: labels %v, Go's %v", batch, labels, wantLabels)
				}
				t.Logf("batch %d: largest probability difference %g", batch, worst)
			}
		})
	}
}
