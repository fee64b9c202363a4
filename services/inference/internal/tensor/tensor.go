package tensor

import (
	"errors"
	"fmt"
	"math"
)

// Tensor is a named tensor whose elements are little-endian bytes in row-major order. For BYTES,
// each element is a 4-byte little-endian length followed by that many bytes, as in the protocol.
type Tensor struct {
	Name     string
	Datatype Datatype
	Shape    []int64
	Data     []byte
}

// MaxElements bounds the element count of one tensor, so shape arithmetic cannot overflow and a
// hostile shape cannot make the server allocate without bound.
const MaxElements = 1 << 31

// ErrShape is returned for a shape with a negative dimension or too many elements.
var ErrShape = errors.New("invalid shape")

// Elements is the number of elements a shape holds.
func Elements(shape []int64) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("%w: dimension %d is negative", ErrShape, d)
		}
		if d > 0 && n > MaxElements/d {
			return 0, fmt.Errorf("%w: more than %d elements", ErrShape, int64(MaxElements))
		}
		n *= d
	}
	return n, nil
}

// CheckBytes verifies that data holds exactly the elements that shape and datatype call for.
func CheckBytes(dt Datatype, shape []int64, data []byte) error {
	n, err := Elements(shape)
	if err != nil {
		return err
	}
	if dt == Bytes {
		count, err := countStrings(data)
		if err != nil {
			return err
		}
		if count != n {
			return fmt.Errorf("holds %d BYTES elements, shape %v needs %d", count, shape, n)
		}
		return nil
	}
	if want := n * int64(dt.Size()); int64(len(data)) != want {
		return fmt.Errorf("has %d bytes, shape %v of %s needs %d", len(data), shape, dt, want)
	}
	return nil
}

// countStrings counts the length-prefixed elements of a BYTES tensor's data.
func countStrings(data []byte) (int64, error) {
	var n int64
	for len(data) > 0 {
		if len(data) < 4 {
			return 0, errors.New("BYTES element length prefix is cut short")
		}
		l := uint64(data[0]) | uint64(data[1])<<8 | uint64(data[2])<<16 | uint64(data[3])<<24
		if l > uint64(len(data)-4) || l > math.MaxInt32 {
			return 0, fmt.Errorf("BYTES element of %d bytes runs past the end", l)
		}
		data = data[4+l:]
		n++
	}
	return n, nil
}

// ShapeEqual reports whether two shapes are the same.
func ShapeEqual(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
