// Package tensor is the server's in-memory tensor: a datatype, a shape and the elements as
// little-endian bytes in row-major order — the same layout as the protocol's raw contents, so
// requests can be batched, split and cached without converting element by element.
package tensor

import "fmt"

// Datatype is an element type of the protocol.
type Datatype uint8

// The protocol's datatypes. The zero value is invalid.
const (
	Invalid Datatype = iota
	Bool
	Uint8
	Uint16
	Uint32
	Uint64
	Int8
	Int16
	Int32
	Int64
	FP16
	FP32
	FP64
	Bytes
)

var datatypeNames = [...]string{
	Invalid: "INVALID", Bool: "BOOL",
	Uint8: "UINT8", Uint16: "UINT16", Uint32: "UINT32", Uint64: "UINT64",
	Int8: "INT8", Int16: "INT16", Int32: "INT32", Int64: "INT64",
	FP16: "FP16", FP32: "FP32", FP64: "FP64", Bytes: "BYTES",
}

func (d Datatype) String() string {
	if int(d) < len(datatypeNames) {
		return datatypeNames[d]
	}
	return fmt.Sprintf("Datatype(%d)", d)
}

// ParseDatatype reads a protocol datatype name such as "FP32".
func ParseDatatype(s string) (Datatype, bool) {
	for i, name := range datatypeNames {
		if i != int(Invalid) && name == s {
			return Datatype(i), true
		}
	}
	return Invalid, false
}

// Size is the width of one element in bytes; 0 for BYTES, whose elements vary in length.
func (d Datatype) Size() int {
	switch d {
	case Bool, Uint8, Int8:
		return 1
	case Uint16, Int16, FP16:
		return 2
	case Uint32, Int32, FP32:
		return 4
	case Uint64, Int64, FP64:
		return 8
	}
	return 0
}

// MarshalText and UnmarshalText let configuration files name datatypes as the protocol does.
func (d Datatype) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses a datatype name.
func (d *Datatype) UnmarshalText(b []byte) error {
	v, ok := ParseDatatype(string(b))
	if !ok {
		return fmt.Errorf("unknown datatype %q", b)
	}
	*d = v
	return nil
}
