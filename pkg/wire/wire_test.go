package wire

import (
	"encoding/binary"
	"testing"
)

func TestRoundTripAndErrorLatch(t *testing.T) {
	b := binary.AppendUvarint(nil, 300)
	b = binary.AppendVarint(b, -7)
	b = append(b, 9)
	b = AppendString(b, "hello")
	b = AppendBytes(b, []byte{1, 2})
	r := NewReader(b)
	if r.Uvarint() != 300 || r.Varint() != -7 || r.Byte() != 9 || r.String() != "hello" || len(r.Bytes()) != 2 || r.Err() != nil || r.Len() != 0 {
		t.Fatalf("round trip failed: %v", r.Err())
	}
	r = NewReader(AppendString(nil, "hello")[:3])
	if r.String() != "" || r.Err() == nil || r.Uvarint() != 0 {
		t.Fatal("a truncated string must latch the error")
	}
	if n := NewReader(binary.AppendUvarint(nil, 1<<40)).Count(); n != 0 {
		t.Fatalf("an impossible count must be refused, got %d", n)
	}
}

func FuzzReader(f *testing.F) {
	f.Add([]byte{3, 'a', 'b', 'c', 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(b)
		for r.Err() == nil && r.Len() > 0 {
			switch r.Byte() % 4 {
			case 0:
				r.Uvarint()
			case 1:
				r.Varint()
			case 2:
				_ = r.String()
			case 3:
				r.Count()
			}
		}
	})
}
