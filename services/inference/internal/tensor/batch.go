package tensor

import "fmt"

// Concat joins tensors of one name and datatype along their first dimension. Every part must have
// the same trailing dimensions. BYTES tensors are not batched.
func Concat(parts []Tensor) (Tensor, error) {
	if len(parts) == 0 {
		return Tensor{}, fmt.Errorf("concat of no tensors")
	}
	first := parts[0]
	if len(parts) == 1 {
		return first, nil
	}
	if first.Datatype == Bytes || len(first.Shape) == 0 {
		return Tensor{}, fmt.Errorf("tensor %q cannot be batched", first.Name)
	}
	rows, size := int64(0), 0
	for _, p := range parts {
		if p.Datatype != first.Datatype || len(p.Shape) != len(first.Shape) || !ShapeEqual(p.Shape[1:], first.Shape[1:]) {
			return Tensor{}, fmt.Errorf("tensor %q: parts of shapes %v and %v cannot be batched", first.Name, first.Shape, p.Shape)
		}
		rows += p.Shape[0]
		size += len(p.Data)
	}
	data := make([]byte, 0, size)
	for _, p := range parts {
		data = append(data, p.Data...)
	}
	shape := append([]int64{rows}, first.Shape[1:]...)
	return Tensor{Name: first.Name, Datatype: first.Datatype, Shape: shape, Data: data}, nil
}

// Split cuts t along its first dimension into parts of the given row counts, which must add up to
// t's first dimension. The parts share t's data.
func Split(t Tensor, rows []int64) ([]Tensor, error) {
	if len(t.Shape) == 0 {
		return nil, fmt.Errorf("output %q has no batch dimension", t.Name)
	}
	if t.Datatype == Bytes {
		return nil, fmt.Errorf("output %q of BYTES cannot be split", t.Name)
	}
	var total int64
	for _, r := range rows {
		total += r
	}
	if total != t.Shape[0] {
		return nil, fmt.Errorf("output %q has %d rows, the batch had %d", t.Name, t.Shape[0], total)
	}
	rowBytes := 0
	if total > 0 {
		rowBytes = len(t.Data) / int(total)
	}
	out := make([]Tensor, len(rows))
	off := 0
	for i, r := range rows {
		n := int(r) * rowBytes
		shape := append([]int64{r}, t.Shape[1:]...)
		out[i] = Tensor{Name: t.Name, Datatype: t.Datatype, Shape: shape, Data: t.Data[off : off+n : off+n]}
		off += n
	}
	return out, nil
}
