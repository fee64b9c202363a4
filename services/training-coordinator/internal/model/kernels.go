package model

// The kernels below are plain loops in a fixed order (no goroutines, no reordering by size), four
// rows at a time so each weight row is read once per four samples. Rows of four inputs that are all
// zero are skipped: MNIST's border pixels and inactive ReLUs make that most of the first layer, and
// skipping is a pure function of the data, so results stay bit-for-bit reproducible.

// matMulBias computes out = x·w + b for x n×in, w in×out (row-major), b out.
func matMulBias(x, w, b, out []float32, n, in, nout int) {
	for i := range n {
		copy(out[i*nout:(i+1)*nout], b)
	}
	i := 0
	for ; i+4 <= n; i += 4 {
		o0 := out[(i+0)*nout : (i+1)*nout]
		o1 := out[(i+1)*nout : (i+2)*nout]
		o2 := out[(i+2)*nout : (i+3)*nout]
		o3 := out[(i+3)*nout : (i+4)*nout]
		x0 := x[(i+0)*in : (i+1)*in]
		x1 := x[(i+1)*in : (i+2)*in]
		x2 := x[(i+2)*in : (i+3)*in]
		x3 := x[(i+3)*in : (i+4)*in]
		for k := range in {
			a0, a1, a2, a3 := x0[k], x1[k], x2[k], x3[k]
			if a0 == 0 && a1 == 0 && a2 == 0 && a3 == 0 {
				continue
			}
			wk := w[k*nout : (k+1)*nout]
			o0, o1, o2, o3 := o0[:len(wk)], o1[:len(wk)], o2[:len(wk)], o3[:len(wk)]
			for j, wv := range wk {
				o0[j] += a0 * wv
				o1[j] += a1 * wv
				o2[j] += a2 * wv
				o3[j] += a3 * wv
			}
		}
	}
	for ; i < n; i++ {
		oi := out[i*nout : (i+1)*nout]
		xi := x[i*in : (i+1)*in]
		for k, a := range xi {
			if a == 0 {
				continue
			}
			wk := w[k*nout : (k+1)*nout]
			oi := oi[:len(wk)]
			for j, wv := range wk {
				oi[j] += a * wv
			}
		}
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
func weightGrad(xt, delta, g []float32, n, in, nout int) {
	clear(g)
	for k := range in {
		gk := g[k*nout : (k+1)*nout]
		xk := xt[k*n : (k+1)*n]
		i := 0
		for ; i+4 <= n; i += 4 {
			a0, a1, a2, a3 := xk[i], xk[i+1], xk[i+2], xk[i+3]
			if a0 == 0 && a1 == 0 && a2 == 0 && a3 == 0 {
				continue
			}
			d0 := delta[(i+0)*nout : (i+1)*nout]
			d1 := delta[(i+1)*nout : (i+2)*nout]
			d2 := delta[(i+2)*nout : (i+3)*nout]
			d3 := delta[(i+3)*nout : (i+4)*nout]
			d0, d1, d2, d3 = d0[:len(gk)], d1[:len(gk)], d2[:len(gk)], d3[:len(gk)]
			for j := range gk {
				gk[j] += a0*d0[j] + a1*d1[j] + a2*d2[j] + a3*d3[j]
			}
		}
		for ; i < n; i++ {
			a := xk[i]
			if a == 0 {
				continue
			}
			di := delta[i*nout : (i+1)*nout]
			di = di[:len(gk)]
			for j := range gk {
				gk[j] += a * di[j]
			}
		}
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
		for k := range nin {
			if ai[k] <= 0 {
				pi[k] = 0
				continue
			}
			wk := w[k*nout : (k+1)*nout]
			wk = wk[:len(di)]
			var s0, s1, s2, s3 float32
			j := 0
			for ; j+4 <= len(di); j += 4 {
				s0 += di[j] * wk[j]
				s1 += di[j+1] * wk[j+1]
				s2 += di[j+2] * wk[j+2]
				s3 += di[j+3] * wk[j+3]
			}
			for ; j < len(di); j++ {
				s0 += di[j] * wk[j]
			}
			pi[k] = (s0 + s1) + (s2 + s3)
		}
	}
}
