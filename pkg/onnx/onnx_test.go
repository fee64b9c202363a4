package onnx_test

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	onnxpb "github.com/bourse-dev/bourse/pkg/gen/onnx"
	"github.com/bourse-dev/bourse/pkg/onnx"
)

func randomLayer(r *rand.Rand, in, out int, act onnx.Activation) onnx.Layer {
	l := onnx.Layer{In: in, Out: out, W: make([]float32, in*out), B: make([]float32, out), Activation: act}
	for i := range l.W {
		l.W[i] = float32(r.NormFloat64())
	}
	for i := range l.B {
		l.B[i] = float32(r.NormFloat64())
	}
	return l
}

func mlp(seed uint64) onnx.Dense {
	r := rand.New(rand.NewPCG(seed, 1))
	return onnx.Dense{
		Layers:     []onnx.Layer{randomLayer(r, 5, 7, onnx.ReLU), randomLayer(r, 7, 3, onnx.None)},
		Head:       onnx.Softmax,
		InputName:  "x",
		OutputName: "probs",
		LabelName:  "label",
	}
}

func decode(t *testing.T, d onnx.Dense) *onnxpb.ModelProto {
	t.Helper()
	b, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var m onnxpb.ModelProto
	if err := proto.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return &m
}

func opTypes(g *onnxpb.GraphProto) []string {
	var ops []string
	for _, n := range g.Node {
		ops = append(ops, n.OpType)
	}
	return ops
}

// shape renders a value's declared shape, symbolic dimensions by name.
func shape(t *testing.T, v *onnxpb.ValueInfoProto) (onnxpb.TensorProto_DataType, []string) {
	t.Helper()
	tt := v.GetType().GetTensorType()
	if tt == nil {
		t.Fatalf("%s is not a tensor: %v", v.Name, v.Type)
	}
	var dims []string
	for _, d := range tt.GetShape().GetDim() {
		switch x := d.Value.(type) {
		case *onnxpb.TensorShapeProto_Dimension_DimParam:
			dims = append(dims, x.DimParam)
		case *onnxpb.TensorShapeProto_Dimension_DimValue:
			dims = append(dims, strconv.FormatInt(x.DimValue, 10))
		default:
			dims = append(dims, "?")
		}
	}
	return onnxpb.TensorProto_DataType(tt.ElemType), dims
}

func rawFloats(t *testing.T, tp *onnxpb.TensorProto) []float32 {
	t.Helper()
	if tp.DataType != int32(onnxpb.TensorProto_FLOAT) || len(tp.FloatData) != 0 || len(tp.RawData)%4 != 0 {
		t.Fatalf("initializer %s: type %d, %d float_data, %d raw bytes", tp.Name, tp.DataType, len(tp.FloatData), len(tp.RawData))
	}
	v := make([]float32, len(tp.RawData)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(tp.RawData[4*i:]))
	}
	return v
}

func TestSoftmaxModelStructure(t *testing.T) {
	d := mlp(1)
	m := decode(t, d)
	if m.IrVersion != 10 {
		t.Errorf("ir_version %d, want 10", m.IrVersion)
	}
	if len(m.OpsetImport) != 1 || m.OpsetImport[0].Domain != "" || m.OpsetImport[0].Version != 21 {
		t.Errorf("opset_import %v, want default domain 21", m.OpsetImport)
	}
	g := m.Graph
	if got, want := opTypes(g), []string{"Gemm", "Relu", "Gemm", "Softmax", "ArgMax"}; !slices.Equal(got, want) {
		t.Errorf("nodes %v, want %v", got, want)
	}
	if len(g.Input) != 1 || g.Input[0].Name != "x" {
		t.Fatalf("inputs %v", g.Input)
	}
	if et, dims := shape(t, g.Input[0]); et != onnxpb.TensorProto_FLOAT || !slices.Equal(dims, []string{"batch", "5"}) {
		t.Errorf("input x: %v %v, want FLOAT [batch 5]", et, dims)
	}
	if len(g.Output) != 2 || g.Output[0].Name != "probs" || g.Output[1].Name != "label" {
		t.Fatalf("outputs %v", g.Output)
	}
	if et, dims := shape(t, g.Output[0]); et != onnxpb.TensorProto_FLOAT || !slices.Equal(dims, []string{"batch", "3"}) {
		t.Errorf("output probs: %v %v, want FLOAT [batch 3]", et, dims)
	}
	if et, dims := shape(t, g.Output[1]); et != onnxpb.TensorProto_INT64 || !slices.Equal(dims, []string{"batch"}) {
		t.Errorf("output label: %v %v, want INT64 [batch]", et, dims)
	}
	// Every node reads only the input, initializers or earlier nodes' outputs, and the graph outputs
	// are produced by some node.
	known := map[string]bool{"x": true}
	for _, in := range g.Initializer {
		known[in.Name] = true
	}
	for _, n := range g.Node {
		for _, in := range n.Input {
			if !known[in] {
				t.Errorf("node %s (%s) reads %q before anything produces it", n.Name, n.OpType, in)
			}
		}
		for _, out := range n.Output {
			known[out] = true
		}
	}
	for _, o := range g.Output {
		if !known[o.Name] {
			t.Errorf("output %q is not produced", o.Name)
		}
	}
	// The weights are stored exactly, with their shapes, as raw little-endian data.
	byName := map[string]*onnxpb.TensorProto{}
	for _, in := range g.Initializer {
		byName[in.Name] = in
	}
	gemms := 0
	for _, n := range g.Node {
		if n.OpType != "Gemm" {
			continue
		}
		l := d.Layers[gemms]
		gemms++
		w, b := byName[n.Input[1]], byName[n.Input[2]]
		if w == nil || b == nil {
			t.Fatalf("gemm %s: initializers %v", n.Name, n.Input)
		}
		if !slices.Equal(w.Dims, []int64{int64(l.In), int64(l.Out)}) || !slices.Equal(rawFloats(t, w), l.W) {
			t.Errorf("gemm %s: weight dims %v or values differ from the layer", n.Name, w.Dims)
		}
		if !slices.Equal(b.Dims, []int64{int64(l.Out)}) || !slices.Equal(rawFloats(t, b), l.B) {
			t.Errorf("gemm %s: bias dims %v or values differ from the layer", n.Name, b.Dims)
		}
		if len(n.Attribute) != 0 {
			t.Errorf("gemm %s: attributes %v (W is [in, out], no transpose)", n.Name, n.Attribute)
		}
	}
}

func TestSigmoidModelStructure(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	d := onnx.Dense{
		Layers:     []onnx.Layer{randomLayer(r, 8, 1, onnx.None)},
		Head:       onnx.Sigmoid,
		InputName:  "features",
		OutputName: "probability",
	}
	g := decode(t, d).Graph
	if got, want := opTypes(g), []string{"Gemm", "Sigmoid"}; !slices.Equal(got, want) {
		t.Errorf("nodes %v, want %v", got, want)
	}
	if len(g.Output) != 1 {
		t.Fatalf("outputs %v, want only the probability", g.Output)
	}
	if et, dims := shape(t, g.Output[0]); et != onnxpb.TensorProto_FLOAT || !slices.Equal(dims, []string{"batch", "1"}) {
		t.Errorf("output: %v %v, want FLOAT [batch 1]", et, dims)
	}
	d.LabelName = "label"
	g = decode(t, d).Graph
	if got, want := opTypes(g), []string{"Gemm", "Sigmoid", "Greater", "Cast", "Squeeze"}; !slices.Equal(got, want) {
		t.Errorf("nodes with a label %v, want %v", got, want)
	}
}

func TestMarshalIsDeterministic(t *testing.T) {
	a, b := mlp(3), mlp(3)
	x, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	y, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x, y) {
		t.Fatal("the same network encoded to different bytes")
	}
	// Metadata is written in key order, whatever the map's iteration order.
	for range 5 {
		a.Metadata = map[string]string{"seed": "3", "feature_version": "1", "a": "b", "z": "y"}
		x1, err := a.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		x2, err := a.Marshal()
		if err != nil || !bytes.Equal(x1, x2) {
			t.Fatalf("metadata made the encoding vary (%v)", err)
		}
	}
	if keys := decode(t, a).MetadataProps; len(keys) != 4 || keys[0].Key != "a" || keys[1].Key != "feature_version" || keys[3].Value != "y" {
		t.Fatalf("metadata_props %v", keys)
	}
	c := mlp(3)
	c.Layers[1].B[2] = math.Nextafter32(c.Layers[1].B[2], 10)
	z, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(x, z) {
		t.Fatal("a one-ulp change of a bias did not change the encoding")
	}
}

func TestValidateRejectsMalformedNetworks(t *testing.T) {
	cases := []struct {
		name string
		edit func(*onnx.Dense)
		want string
	}{
		{"no layers", func(d *onnx.Dense) { d.Layers = nil }, "at least one layer"},
		{"short W", func(d *onnx.Dense) { d.Layers[0].W = d.Layers[0].W[1:] }, "layer 0: W has 34 values, want In*Out = 35"},
		{"long B", func(d *onnx.Dense) { d.Layers[1].B = append(d.Layers[1].B, 0) }, "layer 1: B has 4 values"},
		{"chain", func(d *onnx.Dense) {
			d.Layers[1] = randomLayer(rand.New(rand.NewPCG(1, 1)), 6, 3, onnx.None)
		}, "layer 1: In = 6, but layer 0 has Out = 7"},
		{"zero width", func(d *onnx.Dense) { d.Layers[0].In = 0 }, "layer 0: shape 0×7"},
		{"negative width", func(d *onnx.Dense) { d.Layers[0].Out = -7 }, "both must be positive"},
		{"huge", func(d *onnx.Dense) { d.Layers[0].In, d.Layers[0].Out = 1<<20, 1<<20 }, "more than"},
		{"NaN weight", func(d *onnx.Dense) { d.Layers[0].W[3] = float32(math.NaN()) }, "layer 0: W[3] is NaN"},
		{"Inf bias", func(d *onnx.Dense) { d.Layers[1].B[0] = float32(math.Inf(1)) }, "layer 1: B[0] is +Inf"},
		{"activation", func(d *onnx.Dense) { d.Layers[0].Activation = 7 }, "unknown activation"},
		{"no head", func(d *onnx.Dense) { d.Head = 0 }, "unknown head"},
		{"sigmoid on 3", func(d *onnx.Dense) { d.Head = onnx.Sigmoid }, "sigmoid head: the last layer has 3 outputs"},
		{"softmax on 1", func(d *onnx.Dense) {
			d.Layers[1] = randomLayer(rand.New(rand.NewPCG(1, 1)), 7, 1, onnx.None)
		}, "softmax head: the last layer has 1 output"},
		{"no input name", func(d *onnx.Dense) { d.InputName = "" }, "InputName is empty"},
		{"no output name", func(d *onnx.Dense) { d.OutputName = "" }, "OutputName is empty"},
		{"same names", func(d *onnx.Dense) { d.LabelName = "probs" }, `LabelName "probs" is also OutputName`},
		{"internal name", func(d *onnx.Dense) { d.InputName = "dense.l0.weight" }, "reserved"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := mlp(4)
			c.edit(&d)
			err := d.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate: %v, want an error containing %q", err, c.want)
			}
			if _, err := d.Marshal(); err == nil {
				t.Fatal("Marshal wrote an invalid network")
			}
			if _, _, err := d.Forward(make([]float32, 5), 1); err == nil {
				t.Fatal("Forward ran an invalid network")
			}
		})
	}
	d := mlp(4)
	if err := d.Validate(); err != nil {
		t.Fatalf("the valid network: %v", err)
	}
	if _, _, err := d.Forward(make([]float32, 9), 2); err == nil || !strings.Contains(err.Error(), "9 values for 2 rows of 5") {
		t.Fatalf("Forward with a ragged batch: %v", err)
	}
	for _, batch := range []int{0, -1, 6, math.MaxInt/5 + 1} {
		if _, _, err := d.Forward(make([]float32, 5), batch); err == nil {
			t.Errorf("Forward of 5 values as %d rows succeeded", batch)
		}
	}
}

func TestForwardByHand(t *testing.T) {
	// x·W + b with W = [[1, -1], [2, 0]], b = [0.5, 0]: row (1, 1) gives (3.5, -1), relu (3.5, 0);
	// row (0, -1) gives (-1.5, 0), relu (0, 0). Then a 2→2 layer swapping the units and a softmax:
	// logits (0, 3.5) and the tie (0, 0).
	d := onnx.Dense{
		Layers: []onnx.Layer{
			{In: 2, Out: 2, W: []float32{1, -1, 2, 0}, B: []float32{0.5, 0}, Activation: onnx.ReLU},
			{In: 2, Out: 2, W: []float32{0, 1, 1, 0}, B: []float32{0, 0}},
		},
		Head: onnx.Softmax, InputName: "x", OutputName: "p",
	}
	probs, labels, err := d.Forward([]float32{1, 1, 0, -1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	e := math.Exp(3.5)
	want := []float32{float32(1 / (1 + e)), float32(e / (1 + e)), 0.5, 0.5}
	if !slices.Equal(probs, want) || !slices.Equal(labels, []int64{1, 0}) {
		t.Fatalf("probs %v labels %v, want %v [1 0] (a tie picks the first class)", probs, labels, want)
	}
	s := onnx.Dense{
		Layers:    []onnx.Layer{{In: 2, Out: 1, W: []float32{2, -1}, B: []float32{-0.5}}},
		Head:      onnx.Sigmoid,
		InputName: "x", OutputName: "p",
	}
	probs, labels, err = s.Forward([]float32{1, 1, 0, 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := []float32{float32(1 / (1 + math.Exp(-0.5))), float32(1 / (1 + math.Exp(1.5)))}; !slices.Equal(probs, want) || !slices.Equal(labels, []int64{1, 0}) {
		t.Fatalf("sigmoid probs %v labels %v, want %v [1 0]", probs, labels, want)
	}
}

func TestWriteFileIsWholeAndDecodes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "m", "1")
	path := filepath.Join(dir, "model.onnx")
	d := mlp(5)
	if err := onnx.WriteFile(path, d); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := d.Marshal()
	if !bytes.Equal(got, want) {
		t.Fatal("the file is not the model's encoding")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %v, want only model.onnx", entries)
	}
	bad := mlp(5)
	bad.Head = 0
	if err := onnx.WriteFile(filepath.Join(dir, "bad.onnx"), bad); err == nil {
		t.Fatal("wrote an invalid network")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("a failed write left %v", entries)
	}
}
