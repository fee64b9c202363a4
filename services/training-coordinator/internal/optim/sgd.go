package optim

import (
	"fmt"
	"math"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// sgd is heavy-ball SGD: v ← μv + g + λp, p ← p − η_t v. Its state is [t low, t high, v...].
type sgd struct {
	cfg Config
	t   uint64
	vel []float32
}

func (o *sgd) Step(params, grad []float32) {
	o.t++
	mu, lr, wd := o.cfg.Momentum, float32(o.cfg.lrAt(o.t)), o.cfg.WeightDecay
	v := o.vel[:len(params)]
	g := grad[:len(params)]
	for i := range params {
		vi := mu*v[i] + g[i] + wd*params[i]
		v[i] = vi
		params[i] -= lr * vi
	}
}

func (o *sgd) State() []float32 {
	s := make([]float32, 2+len(o.vel))
	putCount(s, o.t)
	copy(s[2:], o.vel)
	return s
}

func (o *sgd) SetState(state []float32) error {
	if want := 2 + len(o.vel); len(state) != want {
		return errs.Invalid("optimizer_state", "sgd state has %d values, want %d", len(state), want)
	}
	if err := checkFinite(state[2:]); err != nil {
		return err
	}
	o.t = getCount(state)
	copy(o.vel, state[2:])
	return nil
}

// checkFinite refuses a state with NaN or Inf: restoring it would poison every later step.
func checkFinite(state []float32) error {
	for i, x := range state {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return errs.Invalid("optimizer_state", "%s at index %d", fmt.Sprint(x), i)
		}
	}
	return nil
}
