package dataset

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"testing"
)

func gzBytes(raw []byte) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(raw)
	zw.Close()
	return b.Bytes()
}

// FuzzDecodeIdx: whatever the bytes (gzipped or not), decoding never panics, and what it accepts is
// consistent with its header: the data has exactly the declared size (or the limited prefix of it).
func FuzzDecodeIdx(f *testing.F) {
	img := make([]byte, 16+3*2*2)
	binary.BigEndian.PutUint32(img, idxImagesMagic)
	binary.BigEndian.PutUint32(img[4:], 3)
	binary.BigEndian.PutUint32(img[8:], 2)
	binary.BigEndian.PutUint32(img[12:], 2)
	f.Add(gzBytes(img), 0)
	f.Add(gzBytes(img), 2)
	f.Add(gzBytes(img[:20]), 0)
	f.Add(img, 0)
	f.Add([]byte{}, 1)
	f.Fuzz(func(t *testing.T, b []byte, limit int) {
		limit = max(limit, 0) % 8
		data, dims, err := decodeIdx(bytes.NewReader(b), "fuzz", idxImagesMagic, 3, limit)
		if err != nil {
			return
		}
		if len(dims) != 3 {
			t.Fatalf("dims %v", dims)
		}
		items := dims[0]
		if limit > 0 && limit < items {
			items = limit
		}
		if len(data) != items*dims[1]*dims[2] {
			t.Fatalf("%d data bytes for dims %v limit %d", len(data), dims, limit)
		}
	})
}
