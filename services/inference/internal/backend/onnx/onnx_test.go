package onnx_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bourse-dev/bourse/services/inference/internal/modelconfig"
	"github.com/bourse-dev/bourse/services/inference/internal/tensor"
	"github.com/bourse-dev/bourse/services/inference/internal/testutil"
)

func config(t testing.TB, model string) modelconfig.Config {
	t.Helper()
	c, _, err := modelconfig.Load(filepath.Join(testutil.ModelsDir(t), model))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIrisPredictsKnownLabels(t *testing.T) {
	b := testutil.ORT(t)
	s, err := b.Load(filepath.Join(testutil.ModelsDir(t), "iris", "1", "model.onnx"), config(t, "iris"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in := tensor.Tensor{Name: "X", Datatype: tensor.FP32, Shape: []int64{6, 4}, Data: testutil.IrisBytes(testutil.IrisRows...)}
	out, err := s.Run([]tensor.Tensor{in})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].Name != "output_label" || out[0].Datatype != tensor.Int64 || !slices.Equal(out[0].Shape, []int64{6}) {
		t.Fatalf("output %+v", out)
	}
	if got := testutil.Int64s(out[0].Data); !slices.Equal(got, testutil.IrisLabels) {
		t.Fatalf("labels %v, want %v", got, testutil.IrisLabels)
	}
}

func TestVectorSum(t *testing.T) {
	b := testutil.ORT(t)
	s, err := b.Load(filepath.Join(testutil.ModelsDir(t), "vecsum", "1", "model.onnx"), config(t, "vecsum"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var vals []float32
	for i := range 30 {
		vals = append(vals, float32(i))
	}
	out, err := s.Run([]tensor.Tensor{{Name: "input_vectors", Datatype: tensor.FP32, Shape: []int64{3, 10}, Data: testutil.FP32Bytes(vals...)}})
	if err != nil {
		t.Fatal(err)
	}
	// Row sums of 0..9, 10..19, 20..29.
	if got := testutil.Float32s(out[0].Data); !slices.Equal(got, []float32{45, 145, 245}) {
		t.Fatalf("sums %v", got)
	}
}

func TestLoadRejectsMismatchedConfigAndCorruptFiles(t *testing.T) {
	b := testutil.ORT(t)
	path := filepath.Join(testutil.ModelsDir(t), "iris", "1", "model.onnx")
	wrongType := config(t, "iris")
	wrongType.Inputs = []modelconfig.TensorSpec{{Name: "X", Datatype: tensor.FP64, Dims: []int64{4}}}
	if _, err := b.Load(path, wrongType); err == nil || !strings.Contains(err.Error(), `input "X"`) {
		t.Fatalf("FP64 config for an FP32 input: %v", err)
	}
	wrongName := config(t, "iris")
	wrongName.Outputs = []modelconfig.TensorSpec{{Name: "nope", Datatype: tensor.Int64}}
	if _, err := b.Load(path, wrongName); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("unknown output: %v", err)
	}
	seq := config(t, "iris")
	seq.Outputs = []modelconfig.TensorSpec{{Name: "output_probability", Datatype: tensor.FP32}}
	if _, err := b.Load(path, seq); err == nil || !strings.Contains(err.Error(), "not a tensor") {
		t.Fatalf("sequence output: %v", err)
	}
	corrupt := filepath.Join(t.TempDir(), "model.onnx")
	if err := os.WriteFile(corrupt, []byte("this is not a protobuf"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Load(corrupt, config(t, "iris")); err == nil {
		t.Fatal("corrupt model loaded")
	}
}
