package model

// The kernels are plain loops in a fixed order (no goroutines, no choice of path by size), so the
// same inputs give the same bits on every run and machine. Both matrix products first gather the
// non-zero entries of the sparse operand (MNIST is ~80% zero pixels, a ReLU layer about half zeros)
// into a compact list, then run over that list four entries at a time: each output row is loaded and
// stored once per four multiply-adds, and zeros cost nothing. Which entries are skipped is a function
// of the data alone, so skipping keeps results reproducible.

// sparse is scratch for the compacted non-zero entries of one row or column.
type sparse struct {
	idx  []int32
	vals []float32
}

func (s *sparse) gather(v []float32) int {
	if cap(s.idx) < len(v) {
		s.idx, s.vals = make([]int32, len(v)), make([]float32, len(v))
	}
	idx, vals := s.idx[:len(v)], s.vals[:len(v)]
	m := 0
	for k, a := range v {
		if a != 0 {
			idx[m], vals[m] = int32(k), a
			m++
		}
	}
	return m
}

// axpy4 adds Σ vals[t]·rows(idx[t]) over the first m entries to dst, where rows(k) is
// src[k*stride : k*stride+len(dst)].
func axpy4(dst, src []float32, stride int, idx []int32, vals []float32, m int) {
	width := len(dst)
	t := 0
	for ; t+4 <= m; t += 4 {
		a0, a1, a2, a3 := vals[t], vals[t+1], vals[t+2], vals[t+3]
		r0 := src[int(idx[t])*stride:][:width]
		r1 := src[int(idx[t+1])*stride:][:width]
		r2 := src[int(idx[t+2])*stride:][:width]
		r3 := src[int(idx[t+3])*stride:][:width]
		for j := range dst {
			dst[j] += a0*r0[j] + a1*r1[j] + a2*r2[j] + a3*r3[j]
		}
	}
	for ; t < m; t++ {
		a := vals[t]
		r := src[int(idx[t])*stride:][:width]
		for j := range dst {
			dst[j] += a * r[j]
		}
	}
}

// matMulBias computes out = x·w + b for x n×in, w in×out (row-major), b out.
func matMulBias(x, w, b, out []float32, n, in, nout int, s *sparse) {
	for i := range n {
		o := out[i*nout : (i+1)*nout]
		copy(o, b)
		m := s.gather(x[i*in : (i+1)*in])
		axpy4(o, w, nout, s.idx, s.vals, m)
	}
}

// transpose writes the n×m matrix a into t as m×n.
func transpose(a, t []float32, n, m int) {
	for i := range n {
		row := a[i*m : (i+1)*m]
		for k, v := range row {
			t[k*n+i] = v
		}
	}
}

// weightGrad computes g = xᵀ·delta (in×nout) from xt = xᵀ (in×n) and delta (n×nout).
func weightGrad(xt, delta, g []float32, n, in, nout int, s *sparse) {
	clear(g)
	for k := range in {
		m := s.gather(xt[k*n : (k+1)*n])
		axpy4(g[k*nout:(k+1)*nout], delta, nout, s.idx, s.vals, m)
	}
}

// biasGrad sums delta's rows into g.
func biasGrad(delta, g []float32, n, nout int) {
	clear(g)
	for i := range n {
		di := delta[i*nout : (i+1)*nout]
		di = di[:len(g)]
		for j := range g {
			g[j] += di[j]
		}
	}
}

// backInput computes prev = (delta·wᵀ) ⊙ [in > 0]: the gradient with respect to a layer's input,
// through the ReLU that produced it (in is that ReLU's output, so in > 0 exactly where it passed).
func backInput(delta, w, in, prev []float32, n, nin, nout int) {
	for i := range n {
		di := delta[i*nout : (i+1)*nout]
		ai := in[i*nin : (i+1)*nin]
		pi := prev[i*nin : (i+1)*nin]
		pi = pi[:len(ai)]
		for k := range ai {
			if ai[k] <= 0 {
				pi[k] = 0
				continue
			}
			wk := w[k*nout:][:len(di)]
			var s0, s1, s2, s3 float32
			j := 0
			for ; j+4 <= len(di); j += 4 {
				d4, w4 := di[j:j+4:j+4], wk[j:j+4:j+4]
				s0 += d4[0] * w4[0]
				s1 += d4[1] * w4[1]
				s2 += d4[2] * w4[2]
				s3 += d4[3] * w4[3]
			}
			for ; j < len(di); j++ {
				s0 += di[j] * wk[j]
			}
			pi[k] = (s0 + s1) + (s2 + s3)
		}
	}
}
