package grpcapi

import (
	"bytes"
	"math"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/bourse-dev/bourse/pkg/errs"
	pb "github.com/bourse-dev/bourse/pkg/gen/inference"
	"github.com/bourse-dev/bourse/services/inference/internal/tensor"
	"github.com/bourse-dev/bourse/services/inference/internal/testutil"
)

func typedIris() *pb.ModelInferRequest {
	return &pb.ModelInferRequest{ModelName: "iris", Inputs: []*pb.ModelInferRequest_InferInputTensor{{
		Name: "X", Datatype: "FP32", Shape: []int64{1, 4},
		Contents: &pb.InferTensorContents{Fp32Contents: []float32{5.9, 3.0, 5.1, 1.8}}}}}
}

func rawIris() *pb.ModelInferRequest {
	return &pb.ModelInferRequest{ModelName: "iris", Inputs: []*pb.ModelInferRequest_InferInputTensor{{
		Name: "X", Datatype: "FP32", Shape: []int64{1, 4}}},
		RawInputContents: [][]byte{testutil.FP32Bytes(5.9, 3.0, 5.1, 1.8)}}
}

func TestTypedAndRawDecodeToTheSameBytes(t *testing.T) {
	a, rawA, err := decodeInfer(typedIris())
	if err != nil || rawA {
		t.Fatalf("typed: %v raw=%v", err, rawA)
	}
	b, rawB, err := decodeInfer(rawIris())
	if err != nil || !rawB {
		t.Fatalf("raw: %v raw=%v", err, rawB)
	}
	if !bytes.Equal(a.Inputs[0].Data, b.Inputs[0].Data) || a.Inputs[0].Datatype != tensor.FP32 {
		t.Fatalf("typed %v vs raw %v", a.Inputs[0].Data, b.Inputs[0].Data)
	}
}

func TestDecodeRejectsWithTheField(t *testing.T) {
	mod := func(f func(r *pb.ModelInferRequest)) *pb.ModelInferRequest {
		r := typedIris()
		f(r)
		return r
	}
	cases := map[string]struct {
		req   *pb.ModelInferRequest
		field string
	}{
		"no model":         {mod(func(r *pb.ModelInferRequest) { r.ModelName = "" }), "model_name"},
		"path in model":    {mod(func(r *pb.ModelInferRequest) { r.ModelName = "../etc" }), "model_name"},
		"bad version":      {mod(func(r *pb.ModelInferRequest) { r.ModelVersion = "v1" }), "model_version"},
		"no inputs":        {mod(func(r *pb.ModelInferRequest) { r.Inputs = nil }), "inputs"},
		"no name":          {mod(func(r *pb.ModelInferRequest) { r.Inputs[0].Name = "" }), "inputs[0].name"},
		"bad datatype":     {mod(func(r *pb.ModelInferRequest) { r.Inputs[0].Datatype = "FLOAT" }), `inputs["X"].datatype`},
		"negative dim":     {mod(func(r *pb.ModelInferRequest) { r.Inputs[0].Shape = []int64{-1, 4} }), `inputs["X"].shape`},
		"count mismatch":   {mod(func(r *pb.ModelInferRequest) { r.Inputs[0].Shape = []int64{2, 4} }), `inputs["X"].contents`},
		"wrong field":      {mod(func(r *pb.ModelInferRequest) { r.Inputs[0].Contents.Int64Contents = []int64{1} }), `inputs["X"].contents`},
		"missing contents": {mod(func(r *pb.ModelInferRequest) { r.Inputs[0].Contents = nil }), `inputs["X"].contents`},
		"duplicate input":  {mod(func(r *pb.ModelInferRequest) { r.Inputs = append(r.Inputs, r.Inputs[0]) }), `inputs["X"]`},
		"raw and typed": {mod(func(r *pb.ModelInferRequest) {
			r.RawInputContents = [][]byte{make([]byte, 16)}
		}), `inputs["X"].contents`},
		"raw count": {func() *pb.ModelInferRequest {
			r := rawIris()
			r.RawInputContents = append(r.RawInputContents, nil)
			return r
		}(), "raw_input_contents"},
		"raw byte length": {func() *pb.ModelInferRequest {
			r := rawIris()
			r.RawInputContents[0] = r.RawInputContents[0][:15]
			return r
		}(), "raw_input_contents[0]"},
		"int8 range": {&pb.ModelInferRequest{ModelName: "m", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "a", Datatype: "INT8", Shape: []int64{1},
			Contents: &pb.InferTensorContents{IntContents: []int32{300}}}}}, `inputs["a"].contents`},
		"fp16 typed": {&pb.ModelInferRequest{ModelName: "m", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "a", Datatype: "FP16", Shape: []int64{1},
			Contents: &pb.InferTensorContents{Fp32Contents: []float32{1}}}}}, `inputs["a"].contents`},
		"empty output": {mod(func(r *pb.ModelInferRequest) {
			r.Outputs = []*pb.ModelInferRequest_InferRequestedOutputTensor{{}}
		}), "outputs[0].name"},
		"huge shape": {mod(func(r *pb.ModelInferRequest) { r.Inputs[0].Shape = []int64{math.MaxInt64, 2} }), `inputs["X"].shape`},
	}
	for name, tc := range cases {
		_, _, err := decodeInfer(tc.req)
		e, ok := err.(*errs.Error)
		if !ok || e.Kind != errs.KindInvalidArgument || e.Field != tc.field {
			t.Errorf("%s: %v, want InvalidArgument on %s", name, err, tc.field)
		}
	}
}

func TestEncodeTypedAndRaw(t *testing.T) {
	out := tensor.Tensor{Name: "y", Datatype: tensor.Int64, Shape: []int64{2}, Data: []byte{2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}}
	r := encodeRespOf(out, false)
	if got := r.Outputs[0].GetContents().GetInt64Contents(); len(got) != 2 || got[0] != 2 || got[1] != 1 || len(r.RawOutputContents) != 0 {
		t.Fatalf("typed response %v", r)
	}
	r = encodeRespOf(out, true)
	if r.Outputs[0].Contents != nil || !bytes.Equal(r.RawOutputContents[0], out.Data) {
		t.Fatalf("raw response %v", r)
	}
	half := tensor.Tensor{Name: "h", Datatype: tensor.FP16, Shape: []int64{1}, Data: []byte{0, 60}}
	if r := encodeRespOf(half, false); len(r.RawOutputContents) != 1 {
		t.Fatal("FP16 has no typed field: the response must be raw")
	}
}

// FuzzDecodeInfer feeds arbitrary wire bytes through decoding: it must never panic, and whatever
// it accepts must be self-consistent (every input's bytes match its datatype and shape).
func FuzzDecodeInfer(f *testing.F) {
	for _, r := range []*pb.ModelInferRequest{typedIris(), rawIris(), {ModelName: "m", Inputs: []*pb.ModelInferRequest_InferInputTensor{{
		Name: "s", Datatype: "BYTES", Shape: []int64{2}, Contents: &pb.InferTensorContents{BytesContents: [][]byte{[]byte("a"), nil}}}}}} {
		b, err := proto.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var req pb.ModelInferRequest
		if proto.Unmarshal(b, &req) != nil {
			return
		}
		got, _, err := decodeInfer(&req)
		if err != nil {
			if e, ok := err.(*errs.Error); !ok || e.Kind != errs.KindInvalidArgument || e.Field == "" {
				t.Fatalf("rejection without a named field: %v", err)
			}
			return
		}
		for _, in := range got.Inputs {
			if err := tensor.CheckBytes(in.Datatype, in.Shape, in.Data); err != nil {
				t.Fatalf("accepted inconsistent input %q: %v", in.Name, err)
			}
			if in.Name == "" {
				t.Fatal("accepted an unnamed input")
			}
		}
	})
}

func encodeRespOf(t tensor.Tensor, raw bool) *pb.ModelInferResponse {
	return encodeInfer("id", repositoryResponse(t), raw)
}
