package optim

import (
	"math"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// adam is Adam (Kingma & Ba) with bias correction; weight decay is added to the gradient (L2, not
// AdamW). Its state is [t low 32 bits, t high 32 bits, m..., v...] with the step count t stored as
// raw bits so it round-trips exactly through a float32 vector.
type adam struct {
	cfg  Config
	t    uint64
	m, v []float32
}

func (o *adam) Step(params, grad []float32) {
	o.t++
	b1, b2, eps, wd := o.cfg.Beta1, o.cfg.Beta2, o.cfg.Epsilon, o.cfg.WeightDecay
	// The bias corrections are computed once per step in float64, so they do not drift with t.
	c1 := 1 - math.Pow(float64(b1), float64(o.t))
	c2 := 1 - math.Pow(float64(b2), float64(o.t))
	step := float32(o.cfg.lrAt(o.t) * math.Sqrt(c2) / c1)
	epsHat := float32(float64(eps) * math.Sqrt(c2))
	m, v, g := o.m[:len(params)], o.v[:len(params)], grad[:len(params)]
	for i := range params {
		gi := g[i] + wd*params[i]
		mi := b1*m[i] + (1-b1)*gi
		vi := b2*v[i] + (1-b2)*gi*gi
		m[i], v[i] = mi, vi
		params[i] -= step * mi / (float32(math.Sqrt(float64(vi))) + epsHat)
	}
}

func (o *adam) State() []float32 {
	s := make([]float32, 2+len(o.m)+len(o.v))
	putCount(s, o.t)
	copy(s[2:], o.m)
	copy(s[2+len(o.m):], o.v)
	return s
}

func (o *adam) SetState(state []float32) error {
	if want := 2 + len(o.m) + len(o.v); len(state) != want {
		return errs.Invalid("optimizer_state", "adam state has %d values, want %d", len(state), want)
	}
	if err := checkFinite(state[2:]); err != nil {
		return err
	}
	n := len(o.m)
	for _, x := range state[2+n:] {
		if x < 0 {
			return errs.Invalid("optimizer_state", "adam second moment %v is negative", x)
		}
	}
	o.t = getCount(state)
	copy(o.m, state[2:2+n])
	copy(o.v, state[2+n:])
	return nil
}
