package cache

import (
	"encoding/binary"
	"errors"

	"github.com/bourse-dev/bourse/pkg/wire"
	"github.com/bourse-dev/bourse/services/inference/internal/tensor"
)

// Encode serialises output tensors for storage: count, then per tensor its name, datatype, shape
// and data, lengths as uvarints.
func Encode(ts []tensor.Tensor) []byte {
	b := binary.AppendUvarint(nil, uint64(len(ts)))
	for _, t := range ts {
		b = wire.AppendString(b, t.Name)
		b = append(b, byte(t.Datatype))
		b = binary.AppendUvarint(b, uint64(len(t.Shape)))
		for _, d := range t.Shape {
			b = binary.AppendVarint(b, d)
		}
		b = wire.AppendBytes(b, t.Data)
	}
	return b
}

var errCorrupt = errors.New("cached response is corrupt")

// Decode reverses Encode, checking every length, since Redis content is outside our control.
func Decode(b []byte) ([]tensor.Tensor, error) {
	r := wire.NewReader(b)
	n := r.Count()
	out := make([]tensor.Tensor, 0, n)
	for range n {
		var t tensor.Tensor
		t.Name = r.String()
		t.Datatype = tensor.Datatype(r.Byte())
		dims := r.Uvarint()
		if dims > 64 {
			return nil, errCorrupt
		}
		for range dims {
			t.Shape = append(t.Shape, r.Varint())
		}
		t.Data = r.Bytes()
		if r.Err() != nil {
			return nil, errCorrupt
		}
		if err := tensor.CheckBytes(t.Datatype, t.Shape, t.Data); err != nil {
			return nil, errCorrupt
		}
		out = append(out, t)
	}
	if r.Err() != nil || r.Len() != 0 {
		return nil, errCorrupt
	}
	return out, nil
}
