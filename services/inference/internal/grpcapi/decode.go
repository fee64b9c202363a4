package grpcapi

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/bourse-dev/bourse/pkg/errs"
	pb "github.com/bourse-dev/bourse/pkg/gen/inference"
	"github.com/bourse-dev/bourse/services/inference/internal/repository"
	"github.com/bourse-dev/bourse/services/inference/internal/tensor"
)

// decodeInfer checks a ModelInferRequest on its own terms (names, datatypes, shapes, contents that
// match them) and turns it into a domain request. Whether the model takes these tensors is the
// repository's check. The bool reports whether the caller sent raw contents, so the answer can
// come back the same way.
func decodeInfer(req *pb.ModelInferRequest) (repository.Request, bool, error) {
	if err := checkModelRef("model_name", req.GetModelName(), "model_version", req.GetModelVersion()); err != nil {
		return repository.Request{}, false, err
	}
	ins := req.GetInputs()
	if len(ins) == 0 {
		return repository.Request{}, false, errs.Invalid("inputs", "at least one input is needed")
	}
	raw := req.GetRawInputContents()
	useRaw := len(raw) > 0
	if useRaw && len(raw) != len(ins) {
		return repository.Request{}, false, errs.Invalid("raw_input_contents", "has %d entries for %d inputs", len(raw), len(ins))
	}
	out := repository.Request{Model: req.GetModelName(), Version: req.GetModelVersion(), Inputs: make([]tensor.Tensor, len(ins))}
	seen := make(map[string]bool, len(ins))
	for i, in := range ins {
		name := in.GetName()
		if name == "" {
			return repository.Request{}, false, errs.Invalid(fmt.Sprintf("inputs[%d].name", i), "is empty")
		}
		field := fmt.Sprintf("inputs[%q]", name)
		if seen[name] {
			return repository.Request{}, false, errs.Invalid(field, "given twice")
		}
		seen[name] = true
		dt, ok := tensor.ParseDatatype(in.GetDatatype())
		if !ok {
			return repository.Request{}, false, errs.Invalid(field+".datatype", "%q is not a datatype", in.GetDatatype())
		}
		shape := in.GetShape()
		n, err := tensor.Elements(shape)
		if err != nil {
			return repository.Request{}, false, errs.Invalid(field+".shape", "%v", err)
		}
		var data []byte
		if useRaw {
			if in.GetContents() != nil {
				return repository.Request{}, false, errs.Invalid(field+".contents", "must be empty when raw_input_contents is used")
			}
			data = raw[i]
			if err := tensor.CheckBytes(dt, shape, data); err != nil {
				return repository.Request{}, false, errs.Invalid(fmt.Sprintf("raw_input_contents[%d]", i), "for input %q %v", name, err)
			}
		} else {
			data, err = typedToBytes(dt, n, in.GetContents())
			if err != nil {
				return repository.Request{}, false, errs.Invalid(field+".contents", "%v", err)
			}
		}
		out.Inputs[i] = tensor.Tensor{Name: name, Datatype: dt, Shape: shape, Data: data}
	}
	wanted := make(map[string]bool, len(req.GetOutputs()))
	for i, o := range req.GetOutputs() {
		if o.GetName() == "" {
			return repository.Request{}, false, errs.Invalid(fmt.Sprintf("outputs[%d].name", i), "is empty")
		}
		if wanted[o.GetName()] {
			return repository.Request{}, false, errs.Invalid(fmt.Sprintf("outputs[%q]", o.GetName()), "requested twice")
		}
		wanted[o.GetName()] = true
		out.Outputs = append(out.Outputs, o.GetName())
	}
	return out, useRaw, nil
}

// checkModelRef validates a model name and optional version number.
func checkModelRef(nameField, name, versionField, version string) error {
	if name == "" {
		return errs.Invalid(nameField, "is empty")
	}
	if !repository.ValidModelName(name) {
		return errs.Invalid(nameField, "%q is not a model name (letters, digits, '_', '.', '-')", name)
	}
	if version != "" {
		for _, c := range version {
			if c < '0' || c > '9' {
				return errs.Invalid(versionField, "%q is not a version number", version)
			}
		}
		if len(version) > 18 {
			return errs.Invalid(versionField, "%q is too large", version)
		}
	}
	return nil
}

// typedToBytes turns typed contents into little-endian raw bytes, checking that exactly the field
// of the datatype is used, with one value per element, each in the datatype's range.
func typedToBytes(dt tensor.Datatype, n int64, c *pb.InferTensorContents) ([]byte, error) {
	if c == nil {
		if n == 0 {
			return nil, nil
		}
		return nil, fmt.Errorf("missing: send typed contents or raw_input_contents")
	}
	used := usedFields(c)
	want := typedField(dt)
	if want == "" {
		return nil, fmt.Errorf("%s has no typed contents field: use raw_input_contents", dt)
	}
	for _, f := range used {
		if f != want {
			return nil, fmt.Errorf("%s is set, but %s data goes in %s", f, dt, want)
		}
	}
	count := int64(fieldLen(c, want))
	if count != n {
		return nil, fmt.Errorf("has %d values, the shape needs %d", count, n)
	}
	size := dt.Size()
	b := make([]byte, 0, int(n)*max(size, 1))
	switch dt {
	case tensor.Bool:
		for _, v := range c.GetBoolContents() {
			b = append(b, boolByte(v))
		}
	case tensor.Int8, tensor.Int16, tensor.Int32:
		lo, hi := int64(math.MinInt32), int64(math.MaxInt32)
		if dt == tensor.Int8 {
			lo, hi = math.MinInt8, math.MaxInt8
		} else if dt == tensor.Int16 {
			lo, hi = math.MinInt16, math.MaxInt16
		}
		for i, v := range c.GetIntContents() {
			if int64(v) < lo || int64(v) > hi {
				return nil, fmt.Errorf("int_contents[%d] = %d is out of %s range", i, v, dt)
			}
			b = appendUint(b, size, uint64(v))
		}
	case tensor.Uint8, tensor.Uint16, tensor.Uint32:
		hi := uint64(math.MaxUint32)
		if dt == tensor.Uint8 {
			hi = math.MaxUint8
		} else if dt == tensor.Uint16 {
			hi = math.MaxUint16
		}
		for i, v := range c.GetUintContents() {
			if uint64(v) > hi {
				return nil, fmt.Errorf("uint_contents[%d] = %d is out of %s range", i, v, dt)
			}
			b = appendUint(b, size, uint64(v))
		}
	case tensor.Int64:
		for _, v := range c.GetInt64Contents() {
			b = binary.LittleEndian.AppendUint64(b, uint64(v))
		}
	case tensor.Uint64:
		for _, v := range c.GetUint64Contents() {
			b = binary.LittleEndian.AppendUint64(b, v)
		}
	case tensor.FP32:
		for _, v := range c.GetFp32Contents() {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
	case tensor.FP64:
		for _, v := range c.GetFp64Contents() {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		}
	case tensor.Bytes:
		for i, v := range c.GetBytesContents() {
			if len(v) > math.MaxInt32 {
				return nil, fmt.Errorf("bytes_contents[%d] is too long", i)
			}
			b = binary.LittleEndian.AppendUint32(b, uint32(len(v)))
			b = append(b, v...)
		}
	}
	return b, nil
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

func appendUint(b []byte, size int, v uint64) []byte {
	switch size {
	case 1:
		return append(b, byte(v))
	case 2:
		return binary.LittleEndian.AppendUint16(b, uint16(v))
	case 4:
		return binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	return binary.LittleEndian.AppendUint64(b, v)
}

// typedField names the contents field of a datatype; FP16 has none.
func typedField(dt tensor.Datatype) string {
	switch dt {
	case tensor.Bool:
		return "bool_contents"
	case tensor.Int8, tensor.Int16, tensor.Int32:
		return "int_contents"
	case tensor.Int64:
		return "int64_contents"
	case tensor.Uint8, tensor.Uint16, tensor.Uint32:
		return "uint_contents"
	case tensor.Uint64:
		return "uint64_contents"
	case tensor.FP32:
		return "fp32_contents"
	case tensor.FP64:
		return "fp64_contents"
	case tensor.Bytes:
		return "bytes_contents"
	}
	return ""
}

func usedFields(c *pb.InferTensorContents) []string {
	var out []string
	for _, f := range []string{"bool_contents", "int_contents", "int64_contents", "uint_contents", "uint64_contents", "fp32_contents", "fp64_contents", "bytes_contents"} {
		if fieldLen(c, f) > 0 {
			out = append(out, f)
		}
	}
	return out
}

// fieldLen is the number of values in the named contents field.
func fieldLen(c *pb.InferTensorContents, field string) int {
	n := 0
	switch field {
	case "bool_contents":
		n = len(c.GetBoolContents())
	case "int_contents":
		n = len(c.GetIntContents())
	case "int64_contents":
		n = len(c.GetInt64Contents())
	case "uint_contents":
		n = len(c.GetUintContents())
	case "uint64_contents":
		n = len(c.GetUint64Contents())
	case "fp32_contents":
		n = len(c.GetFp32Contents())
	case "fp64_contents":
		n = len(c.GetFp64Contents())
	case "bytes_contents":
		n = len(c.GetBytesContents())
	}
	return n
}
