package grpcring

import (
	"encoding/binary"
	"unsafe"
)

// hostLittleEndian: the wire format is little-endian, so on such hosts the bytes already are the
// float32 values.
var hostLittleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// viewFloats is DecodeFloats without the copy where the bytes can be read in place (a
// little-endian host and 4-byte-aligned data); the result aliases b.
func viewFloats(b []byte) ([]float32, error) {
	if len(b) == 0 || len(b)%4 != 0 || !hostLittleEndian || uintptr(unsafe.Pointer(unsafe.SliceData(b)))%4 != 0 {
		return DecodeFloats(b)
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/4), nil
}
