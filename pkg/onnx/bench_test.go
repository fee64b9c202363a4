package onnx_test

import (
	"math/rand/v2"
	"testing"

	"github.com/bourse-dev/bourse/pkg/onnx"
)

// An MNIST-sized MLP (784-256-128-10, 235k parameters), as training exports it.
func mnistMLP() onnx.Dense {
	r := rand.New(rand.NewPCG(1, 2))
	return onnx.Dense{
		Layers: []onnx.Layer{
			randomLayer(r, 784, 256, onnx.ReLU), randomLayer(r, 256, 128, onnx.ReLU), randomLayer(r, 128, 10, onnx.None),
		},
		Head: onnx.Softmax, InputName: "pixels", OutputName: "probabilities", LabelName: "label",
	}
}

func BenchmarkMarshalMNISTMLP(b *testing.B) {
	d := mnistMLP()
	b.ReportAllocs()
	for b.Loop() {
		out, err := d.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(out)))
	}
}

func BenchmarkForwardMNISTMLPBatch64(b *testing.B) {
	d := mnistMLP()
	x := make([]float32, 64*784)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range x {
		x[i] = r.Float32()
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := d.Forward(x, 64); err != nil {
			b.Fatal(err)
		}
	}
}
