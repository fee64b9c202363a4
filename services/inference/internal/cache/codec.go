package cache

import (
	"encoding/binary"
	"errors"

	"github.com/bourse-dev/bourse/services/inference/internal/tensor"
)

// Encode serialises output tensors for storage: count, then per tensor its name, datatype, shape
// and data, lengths as uvarints.
func Encode(ts []tensor.Tensor) []byte {
	b := binary.AppendUvarint(nil, uint64(len(ts)))
	for _, t := range ts {
		b = binary.AppendUvarint(b, uint64(len(t.Name)))
		b = append(b, t.Name...)
		b = append(b, byte(t.Datatype))
		b = binary.AppendUvarint(b, uint64(len(t.Shape)))
		for _, d := range t.Shape {
			b = binary.AppendVarint(b, d)
		}
		b = binary.AppendUvarint(b, uint64(len(t.Data)))
		b = append(b, t.Data...)
	}
	return b
}

var errCorrupt = errors.New("cached response is corrupt")

// Decode reverses Encode, checking every length, since Redis content is outside our control.
func Decode(b []byte) ([]tensor.Tensor, error) {
	r := reader{b: b}
	n := r.uvarint()
	if n > uint64(len(b)) {
		return nil, errCorrupt
	}
	out := make([]tensor.Tensor, 0, n)
	for range n {
		var t tensor.Tensor
		t.Name = string(r.bytes(r.uvarint()))
		t.Datatype = tensor.Datatype(r.byte())
		dims := r.uvarint()
		if dims > 64 {
			return nil, errCorrupt
		}
		for range dims {
			t.Shape = append(t.Shape, r.varint())
		}
		t.Data = r.bytes(r.uvarint())
		if r.err != nil {
			return nil, r.err
		}
		if err := tensor.CheckBytes(t.Datatype, t.Shape, t.Data); err != nil {
			return nil, errCorrupt
		}
		out = append(out, t)
	}
	if r.err != nil || len(r.b) != 0 {
		return nil, errCorrupt
	}
	return out, nil
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if len(r.b) < 1 {
		r.err = errCorrupt
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) bytes(n uint64) []byte {
	if n > uint64(len(r.b)) {
		r.err = errCorrupt
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}
