package grpcapi

import (
	"encoding/binary"
	"math"

	pb "github.com/bourse-dev/bourse/pkg/gen/inference"
	"github.com/bourse-dev/bourse/services/inference/internal/repository"
	"github.com/bourse-dev/bourse/services/inference/internal/tensor"
)

// encodeInfer builds the response: raw_output_contents when the caller sent raw inputs (or a
// datatype has no typed field), typed contents otherwise, so grpcurl users read plain numbers.
func encodeInfer(id string, r repository.Response, raw bool) *pb.ModelInferResponse {
	resp := &pb.ModelInferResponse{ModelName: r.Model, ModelVersion: r.Version, Id: id}
	for _, t := range r.Outputs {
		if typedField(t.Datatype) == "" {
			raw = true
		}
	}
	for _, t := range r.Outputs {
		o := &pb.ModelInferResponse_InferOutputTensor{Name: t.Name, Datatype: t.Datatype.String(), Shape: t.Shape}
		if raw {
			resp.RawOutputContents = append(resp.RawOutputContents, t.Data)
		} else {
			o.Contents = bytesToTyped(t)
		}
		resp.Outputs = append(resp.Outputs, o)
	}
	return resp
}

// bytesToTyped turns a tensor's little-endian bytes into the typed contents field of its datatype.
func bytesToTyped(t tensor.Tensor) *pb.InferTensorContents {
	c := &pb.InferTensorContents{}
	b := t.Data
	size := t.Datatype.Size()
	switch t.Datatype {
	case tensor.Bool:
		for _, v := range b {
			c.BoolContents = append(c.BoolContents, v != 0)
		}
	case tensor.Int8:
		for _, v := range b {
			c.IntContents = append(c.IntContents, int32(int8(v)))
		}
	case tensor.Int16:
		for i := 0; i+size <= len(b); i += size {
			c.IntContents = append(c.IntContents, int32(int16(binary.LittleEndian.Uint16(b[i:]))))
		}
	case tensor.Int32:
		for i := 0; i+size <= len(b); i += size {
			c.IntContents = append(c.IntContents, int32(binary.LittleEndian.Uint32(b[i:])))
		}
	case tensor.Int64:
		for i := 0; i+size <= len(b); i += size {
			c.Int64Contents = append(c.Int64Contents, int64(binary.LittleEndian.Uint64(b[i:])))
		}
	case tensor.Uint8:
		for _, v := range b {
			c.UintContents = append(c.UintContents, uint32(v))
		}
	case tensor.Uint16:
		for i := 0; i+size <= len(b); i += size {
			c.UintContents = append(c.UintContents, uint32(binary.LittleEndian.Uint16(b[i:])))
		}
	case tensor.Uint32:
		for i := 0; i+size <= len(b); i += size {
			c.UintContents = append(c.UintContents, binary.LittleEndian.Uint32(b[i:]))
		}
	case tensor.Uint64:
		for i := 0; i+size <= len(b); i += size {
			c.Uint64Contents = append(c.Uint64Contents, binary.LittleEndian.Uint64(b[i:]))
		}
	case tensor.FP32:
		for i := 0; i+size <= len(b); i += size {
			c.Fp32Contents = append(c.Fp32Contents, math.Float32frombits(binary.LittleEndian.Uint32(b[i:])))
		}
	case tensor.FP64:
		for i := 0; i+size <= len(b); i += size {
			c.Fp64Contents = append(c.Fp64Contents, math.Float64frombits(binary.LittleEndian.Uint64(b[i:])))
		}
	case tensor.Bytes:
		for len(b) >= 4 {
			n := int(binary.LittleEndian.Uint32(b))
			if n > len(b)-4 {
				break
			}
			c.BytesContents = append(c.BytesContents, b[4:4+n])
			b = b[4+n:]
		}
	}
	return c
}
