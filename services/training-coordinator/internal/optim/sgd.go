package optim

import (
	"fmt"
	"math"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// sgd is heavy-ball SGD: v ← μv + g + λp, p ← p − ηv. Its state is v.
type sgd struct {
	cfg Config
	vel []float32
}

func (o *sgd) Step(params, grad []float32) {
	mu, lr, wd := o.cfg.Momentum, o.cfg.LR, o.cfg.WeightDecay
	v := o.vel[:len(params)]
	g := grad[:len(params)]
	for i := range params {
		vi := mu*v[i] + g[i] + wd*params[i]
		v[i] = vi
		params[i] -= lr * vi
	}
}

func (o *sgd) State() []float32 { return append([]float32(nil), o.vel...) }

func (o *sgd) SetState(state []float32) error {
	if len(state) != len(o.vel) {
		return errs.Invalid("optimizer_state", "sgd state has %d values, want %d", len(state), len(o.vel))
	}
	if err := checkFinite(state); err != nil {
		return err
	}
	copy(o.vel, state)
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
