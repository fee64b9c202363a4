package tensor

import (
	"bytes"
	"errors"
	"testing"
)

func TestElementsRejectsNegativeAndHuge(t *testing.T) {
	if n, err := Elements([]int64{3, 4}); err != nil || n != 12 {
		t.Fatalf("Elements(3,4) = %d, %v", n, err)
	}
	if n, err := Elements(nil); err != nil || n != 1 {
		t.Fatalf("a scalar has one element, got %d, %v", n, err)
	}
	for _, s := range [][]int64{{-1}, {1 << 40, 1 << 40}, {MaxElements, 2}} {
		if _, err := Elements(s); !errors.Is(err, ErrShape) {
			t.Errorf("Elements(%v) err = %v, want ErrShape", s, err)
		}
	}
}

func TestCheckBytes(t *testing.T) {
	if err := CheckBytes(FP32, []int64{2, 2}, make([]byte, 16)); err != nil {
		t.Fatal(err)
	}
	if err := CheckBytes(FP32, []int64{2, 2}, make([]byte, 15)); err == nil {
		t.Fatal("15 bytes for 4 FP32 accepted")
	}
	two := []byte{1, 0, 0, 0, 'a', 2, 0, 0, 0, 'b', 'c'}
	if err := CheckBytes(Bytes, []int64{2}, two); err != nil {
		t.Fatal(err)
	}
	if err := CheckBytes(Bytes, []int64{3}, two); err == nil {
		t.Fatal("2 strings accepted for shape [3]")
	}
	if err := CheckBytes(Bytes, []int64{1}, []byte{9, 0, 0, 0, 'x'}); err == nil {
		t.Fatal("length prefix past the end accepted")
	}
}

func TestConcatSplitRoundTrip(t *testing.T) {
	a := Tensor{Name: "x", Datatype: Int16, Shape: []int64{1, 2}, Data: []byte{1, 0, 2, 0}}
	b := Tensor{Name: "x", Datatype: Int16, Shape: []int64{2, 2}, Data: []byte{3, 0, 4, 0, 5, 0, 6, 0}}
	m, err := Concat([]Tensor{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if !ShapeEqual(m.Shape, []int64{3, 2}) || len(m.Data) != 12 {
		t.Fatalf("merged %v %d bytes", m.Shape, len(m.Data))
	}
	parts, err := Split(m, []int64{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(parts[0].Data, a.Data) || !bytes.Equal(parts[1].Data, b.Data) || !ShapeEqual(parts[1].Shape, b.Shape) {
		t.Fatalf("split back to %+v", parts)
	}
	if _, err := Split(m, []int64{1, 1}); err == nil {
		t.Fatal("split into fewer rows than the tensor has accepted")
	}
	c := Tensor{Name: "x", Datatype: Int16, Shape: []int64{1, 3}, Data: make([]byte, 6)}
	if _, err := Concat([]Tensor{a, c}); err == nil {
		t.Fatal("concat of different trailing shapes accepted")
	}
}

func TestParseDatatype(t *testing.T) {
	for d := Bool; d <= Bytes; d++ {
		got, ok := ParseDatatype(d.String())
		if !ok || got != d {
			t.Errorf("round trip of %v gave %v %v", d, got, ok)
		}
	}
	if _, ok := ParseDatatype("FLOAT"); ok {
		t.Error("FLOAT parsed")
	}
	if _, ok := ParseDatatype("INVALID"); ok {
		t.Error("INVALID parsed")
	}
}
