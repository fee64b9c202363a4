package onnx_test

import (
	"encoding/binary"
	"math"
	"testing"

	"google.golang.org/protobuf/proto"

	onnxpb "github.com/bourse-dev/bourse/pkg/gen/onnx"
	"github.com/bourse-dev/bourse/pkg/onnx"
)

// Any network, well formed or not, either fails Validate, Marshal and Forward alike or encodes to a
// model that decodes, and computes probabilities (rows of a softmax summing to 1).
func FuzzDense(f *testing.F) {
	f.Add([]byte{2, 3, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{1, 1, 2, 1, 0x7f, 0xc0, 0, 0})
	f.Add([]byte{3, 0, 1, 5, 5})
	f.Fuzz(func(t *testing.T, data []byte) {
		next := func() byte {
			if len(data) == 0 {
				return 0
			}
			b := data[0]
			data = data[1:]
			return b
		}
		value := func() float32 {
			if len(data) < 4 {
				return float32(next()) / 16
			}
			v := math.Float32frombits(binary.LittleEndian.Uint32(data))
			data = data[4:]
			return v
		}
		d := onnx.Dense{Head: onnx.Head(next() % 4), InputName: "x", OutputName: "y"}
		if next()%2 == 1 {
			d.LabelName = "label"
		}
		layers := int(next() % 4)
		in := int(next()%6) + 1
		for range layers {
			out := int(next() % 6)
			l := onnx.Layer{In: in, Out: out, Activation: onnx.Activation(next() % 3)}
			for range in * out {
				l.W = append(l.W, value())
			}
			for range out {
				l.B = append(l.B, value())
			}
			d.Layers = append(d.Layers, l)
			in = max(out, 1)
		}
		verr := d.Validate()
		b, merr := d.Marshal()
		if (verr == nil) != (merr == nil) {
			t.Fatalf("Validate %v, Marshal %v", verr, merr)
		}
		if verr != nil {
			if _, _, err := d.Forward(make([]float32, 1), 1); err == nil && len(d.Layers) > 0 && d.Inputs() == 1 {
				t.Fatalf("Forward ran a network Validate refused (%v)", verr)
			}
			return
		}
		var m onnxpb.ModelProto
		if err := proto.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if m.IrVersion != onnx.IRVersion || len(m.Graph.Output) != 1+len(d.LabelName)/len("label") {
			t.Fatalf("decoded ir %d, outputs %v", m.IrVersion, m.Graph.Output)
		}
		x := make([]float32, 2*d.Inputs())
		for i := range x {
			x[i] = float32(i%3) - 1
		}
		probs, labels, err := d.Forward(x, 2)
		if err != nil {
			t.Fatal(err)
		}
		classes := d.Classes()
		for r := range 2 {
			var sum float64
			for _, p := range probs[r*classes : (r+1)*classes] {
				if !(p >= 0 && p <= 1) {
					t.Fatalf("probability %v", p)
				}
				sum += float64(p)
			}
			if d.Head == onnx.Softmax && math.Abs(sum-1) > 1e-5 && !math.IsNaN(sum) {
				t.Fatalf("softmax row sums to %v", sum)
			}
			if labels[r] < 0 || (d.Head == onnx.Softmax && labels[r] >= int64(classes)) || (d.Head == onnx.Sigmoid && labels[r] > 1) {
				t.Fatalf("label %d", labels[r])
			}
		}
	})
}
