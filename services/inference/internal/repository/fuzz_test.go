package repository

import (
	"testing"

	"github.com/bourse-dev/bourse/services/inference/internal/modelconfig"
	"github.com/bourse-dev/bourse/services/inference/internal/tensor"
)

// FuzzConform checks requests against a batched model's declared inputs: it must never panic, and
// what it accepts must fit the model (one input, FP32, 1..64 rows of 4, bytes to match).
func FuzzConform(f *testing.F) {
	cfg, err := modelconfig.Parse([]byte(`{"max_batch_size": 64,
		"inputs": [{"name": "X", "datatype": "FP32", "dims": [4]}],
		"outputs": [{"name": "y", "datatype": "INT64", "dims": []}]}`))
	if err != nil {
		f.Fatal(err)
	}
	f.Add("X", uint8(tensor.FP32), int64(2), int64(4), make([]byte, 32), false)
	f.Add("X", uint8(tensor.FP32), int64(65), int64(4), make([]byte, 65*16), false)
	f.Add("Y", uint8(tensor.Int64), int64(-1), int64(4), []byte{1}, true)
	f.Fuzz(func(t *testing.T, name string, dt uint8, rows, cols int64, data []byte, twice bool) {
		in := tensor.Tensor{Name: name, Datatype: tensor.Datatype(dt), Shape: []int64{rows, cols}, Data: data}
		inputs := []tensor.Tensor{in}
		if twice {
			inputs = append(inputs, in)
		}
		got, n, err := conform(cfg, inputs)
		if err != nil {
			return
		}
		if len(got) != 1 || got[0].Name != "X" || got[0].Datatype != tensor.FP32 || n < 1 || n > 64 ||
			got[0].Shape[1] != 4 || int64(len(got[0].Data)) != n*16 {
			t.Fatalf("accepted %+v (rows %d) for a [-1,4] FP32 input", got, n)
		}
	})
}
