package onnx

import (
	"fmt"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/bourse-dev/bourse/services/inference/internal/tensor"
)

var ortTypes = map[tensor.Datatype]ort.TensorElementDataType{
	tensor.Bool: ort.TensorElementDataTypeBool, tensor.Uint8: ort.TensorElementDataTypeUint8,
	tensor.Uint16: ort.TensorElementDataTypeUint16, tensor.Uint32: ort.TensorElementDataTypeUint32,
	tensor.Uint64: ort.TensorElementDataTypeUint64, tensor.Int8: ort.TensorElementDataTypeInt8,
	tensor.Int16: ort.TensorElementDataTypeInt16, tensor.Int32: ort.TensorElementDataTypeInt32,
	tensor.Int64: ort.TensorElementDataTypeInt64, tensor.FP16: ort.TensorElementDataTypeFloat16,
	tensor.FP32: ort.TensorElementDataTypeFloat, tensor.FP64: ort.TensorElementDataTypeDouble,
}

func toORT(d tensor.Datatype) (ort.TensorElementDataType, bool) {
	t, ok := ortTypes[d]
	return t, ok
}

func fromORT(t ort.TensorElementDataType) (tensor.Datatype, bool) {
	for d, o := range ortTypes {
		if o == t {
			return d, true
		}
	}
	return tensor.Invalid, false
}

// toTensor copies an output value into a tensor.Tensor. onnxruntime_go hands back typed Go
// tensors backed by Go memory; their element slices are viewed as bytes (the host is little-endian, like the protocol).
func toTensor(name string, v ort.Value) (tensor.Tensor, error) {
	switch t := v.(type) {
	case *ort.Tensor[float32]:
		return typed(name, tensor.FP32, t)
	case *ort.Tensor[float64]:
		return typed(name, tensor.FP64, t)
	case *ort.Tensor[int8]:
		return typed(name, tensor.Int8, t)
	case *ort.Tensor[int16]:
		return typed(name, tensor.Int16, t)
	case *ort.Tensor[int32]:
		return typed(name, tensor.Int32, t)
	case *ort.Tensor[int64]:
		return typed(name, tensor.Int64, t)
	case *ort.Tensor[uint8]:
		return typed(name, tensor.Uint8, t)
	case *ort.Tensor[uint16]:
		return typed(name, tensor.Uint16, t)
	case *ort.Tensor[uint32]:
		return typed(name, tensor.Uint32, t)
	case *ort.Tensor[uint64]:
		return typed(name, tensor.Uint64, t)
	case *ort.Tensor[bool]:
		return typed(name, tensor.Bool, t)
	case *ort.CustomDataTensor:
		dt, ok := fromORT(ort.TensorElementDataType(t.DataType()))
		if !ok {
			return tensor.Tensor{}, fmt.Errorf("output %q: element type %d is not supported", name, t.DataType())
		}
		return tensor.Tensor{Name: name, Datatype: dt, Shape: []int64(t.GetShape().Clone()), Data: append([]byte(nil), t.GetData()...)}, nil
	}
	return tensor.Tensor{}, fmt.Errorf("output %q: %T values are not supported", name, v)
}

func typed[T ort.TensorData](name string, dt tensor.Datatype, t *ort.Tensor[T]) (tensor.Tensor, error) {
	data := t.GetData()
	var raw []byte
	if len(data) > 0 {
		var zero T
		view := unsafe.Slice((*byte)(unsafe.Pointer(&data[0])), len(data)*int(unsafe.Sizeof(zero)))
		// The slice is Go memory that outlives the ORT value, so it can be kept without a copy.
		raw = view
	}
	return tensor.Tensor{Name: name, Datatype: dt, Shape: []int64(t.GetShape().Clone()), Data: raw}, nil
}
