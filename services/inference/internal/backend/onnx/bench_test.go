package onnx_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/bourse-dev/bourse/services/inference/internal/tensor"
	"github.com/bourse-dev/bourse/services/inference/internal/testutil"
)

// BenchmarkIrisRun is one onnxruntime execution of the iris forest at several batch sizes: the
// cost that dynamic batching amortises.
func BenchmarkIrisRun(b *testing.B) {
	s, err := testutil.ORT(b).Load(filepath.Join(testutil.ModelsDir(b), "iris", "1", "model.onnx"), config(b, "iris"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for _, rows := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			batch := make([][4]float32, rows)
			for i := range batch {
				batch[i] = testutil.IrisRows[i%len(testutil.IrisRows)]
			}
			in := []tensor.Tensor{{Name: "X", Datatype: tensor.FP32, Shape: []int64{int64(rows), 4}, Data: testutil.IrisBytes(batch...)}}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Run(in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
