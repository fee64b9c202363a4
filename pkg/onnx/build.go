package onnx

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	onnxpb "github.com/bourse-dev/bourse/pkg/gen/onnx"
)

// internalPrefix starts the name of every tensor and node the writer makes up, so they cannot collide
// with the caller's input and output names.
const internalPrefix = "dense."

func isInternalName(name string) bool { return strings.HasPrefix(name, internalPrefix) }

// batchDim is the symbolic name of the dynamic batch dimension.
const batchDim = "batch"

// Model builds the ONNX model of the network.
func (d *Dense) Model() (*onnxpb.ModelProto, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	g := &onnxpb.GraphProto{Name: "dense"}
	x := d.InputName
	for i, l := range d.Layers {
		w, b := fmt.Sprintf("%sl%d.weight", internalPrefix, i), fmt.Sprintf("%sl%d.bias", internalPrefix, i)
		g.Initializer = append(g.Initializer,
			floatTensor(w, l.W, int64(l.In), int64(l.Out)),
			floatTensor(b, l.B, int64(l.Out)))
		y := fmt.Sprintf("%sl%d.gemm", internalPrefix, i)
		// Gemm broadcasts the bias row over the batch: Y = X·W + B with X [batch, In], W [In, Out].
		g.Node = append(g.Node, node("Gemm", y, []string{x, w, b}, y))
		x = y
		if l.Activation == ReLU {
			r := fmt.Sprintf("%sl%d.relu", internalPrefix, i)
			g.Node = append(g.Node, node("Relu", r, []string{x}, r))
			x = r
		}
	}
	logits := x
	switch d.Head {
	case Softmax:
		g.Node = append(g.Node, node("Softmax", internalPrefix+"softmax", []string{logits}, d.OutputName,
			intAttr("axis", 1)))
	case Sigmoid:
		g.Node = append(g.Node, node("Sigmoid", internalPrefix+"sigmoid", []string{logits}, d.OutputName))
	}
	g.Input = []*onnxpb.ValueInfoProto{tensorInfo(d.InputName, onnxpb.TensorProto_FLOAT, int64(d.Inputs()))}
	g.Output = []*onnxpb.ValueInfoProto{tensorInfo(d.OutputName, onnxpb.TensorProto_FLOAT, int64(d.Classes()))}
	if d.LabelName != "" {
		g.Node = append(g.Node, d.labelNodes(g, logits)...)
		g.Output = append(g.Output, tensorInfo(d.LabelName, onnxpb.TensorProto_INT64))
	}
	var meta []*onnxpb.StringStringEntryProto
	for _, k := range slices.Sorted(maps.Keys(d.Metadata)) {
		meta = append(meta, &onnxpb.StringStringEntryProto{Key: k, Value: d.Metadata[k]})
	}
	return &onnxpb.ModelProto{
		IrVersion:     IRVersion,
		OpsetImport:   []*onnxpb.OperatorSetIdProto{{Domain: "", Version: Opset}},
		ProducerName:  "bourse",
		DocString:     d.DocString,
		Graph:         g,
		MetadataProps: meta,
	}, nil
}

// labelNodes compute the predicted class from the logits (the head is monotonic, so the logits pick
// the same class as the probabilities without depending on their rounding).
func (d *Dense) labelNodes(g *onnxpb.GraphProto, logits string) []*onnxpb.NodeProto {
	if d.Head == Softmax {
		// The first index among equal maxima, as ArgMax does by default.
		return []*onnxpb.NodeProto{node("ArgMax", internalPrefix+"argmax", []string{logits}, d.LabelName,
			intAttr("axis", 1), intAttr("keepdims", 0))}
	}
	zero, axes := internalPrefix+"zero", internalPrefix+"axes"
	g.Initializer = append(g.Initializer, floatTensor(zero, []float32{0}), int64Tensor(axes, []int64{1}, 1))
	pos, cast := internalPrefix+"positive", internalPrefix+"positive.int64"
	return []*onnxpb.NodeProto{
		node("Greater", pos, []string{logits, zero}, pos),
		node("Cast", cast, []string{pos}, cast, intAttr("to", int64(onnxpb.TensorProto_INT64))),
		node("Squeeze", internalPrefix+"squeeze", []string{cast, axes}, d.LabelName),
	}
}

// Marshal encodes the network's model. The encoding is deterministic: the same network gives the
// same bytes.
func (d *Dense) Marshal() ([]byte, error) {
	m, err := d.Model()
	if err != nil {
		return nil, err
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}

func node(op, name string, inputs []string, output string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{OpType: op, Name: name, Input: inputs, Output: []string{output}, Attribute: attrs}
}

func intAttr(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: name, Type: onnxpb.AttributeProto_INT, I: v}
}

func floatTensor(name string, v []float32, dims ...int64) *onnxpb.TensorProto {
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(x))
	}
	return &onnxpb.TensorProto{Name: name, DataType: int32(onnxpb.TensorProto_FLOAT), Dims: dims, RawData: raw}
}

func int64Tensor(name string, v []int64, dims ...int64) *onnxpb.TensorProto {
	raw := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(x))
	}
	return &onnxpb.TensorProto{Name: name, DataType: int32(onnxpb.TensorProto_INT64), Dims: dims, RawData: raw}
}

// tensorInfo declares a graph input or output of shape [batch, dims...].
func tensorInfo(name string, elem onnxpb.TensorProto_DataType, dims ...int64) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{
		{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: batchDim}},
	}}
	for _, n := range dims {
		shape.Dim = append(shape.Dim, &onnxpb.TensorShapeProto_Dimension{
			Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: n},
		})
	}
	return &onnxpb.ValueInfoProto{Name: name, Type: &onnxpb.TypeProto{
		Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: int32(elem), Shape: shape}},
	}}
}
