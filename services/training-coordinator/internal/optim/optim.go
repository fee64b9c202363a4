// Package optim holds the optimizers that turn a (mean, allreduced) gradient into a parameter update:
// SGD with momentum and Adam. Their whole state is one float32 vector (State/SetState) so it can be
// checkpointed and broadcast to a joining worker next to the parameters; a restored optimizer continues
// bit for bit as the original would.
package optim

import (
	"math"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// Kinds of optimizer.
const (
	KindSGD  = "sgd"
	KindAdam = "adam"
)

// Optimizer updates params in place from grad. Step must be given slices of the length New was.
type Optimizer interface {
	Step(params, grad []float32)
	State() []float32
	SetState(state []float32) error
}

// Learning-rate schedules.
const (
	ScheduleConstant = "constant" // LR at every step (also "")
	ScheduleCosine   = "cosine"   // LR·½(1 + cos(π·t/Steps)) at step t, 0 from Steps on
)

// Config holds the hyper-parameters. Zero Beta1/Beta2/Epsilon take Adam's usual 0.9/0.999/1e-8.
// The schedule is a function of the optimizer's own step count, which is part of its state, so a
// restored optimizer (checkpoint, a worker joining) continues on the same schedule.
type Config struct {
	Kind        string
	LR          float32
	Schedule    string  // ScheduleConstant or ScheduleCosine
	Steps       int64   // the length of a cosine schedule
	Momentum    float32 // SGD: heavy-ball momentum in [0, 1)
	WeightDecay float32 // L2 penalty added to the gradient, ≥ 0
	Beta1       float32 // Adam
	Beta2       float32 // Adam
	Epsilon     float32 // Adam
}

// New validates cfg and returns an optimizer for numParams parameters; errors name the field.
func New(cfg Config, numParams int) (Optimizer, error) {
	if numParams < 1 {
		return nil, errs.Invalid("num_params", "%d is not positive", numParams)
	}
	if !(cfg.LR > 0) || math.IsInf(float64(cfg.LR), 0) {
		return nil, errs.Invalid("learning_rate", "%v is not a positive finite number", cfg.LR)
	}
	if !(cfg.WeightDecay >= 0) || math.IsInf(float64(cfg.WeightDecay), 0) {
		return nil, errs.Invalid("weight_decay", "%v is not a finite number ≥ 0", cfg.WeightDecay)
	}
	switch cfg.Schedule {
	case "", ScheduleConstant:
	case ScheduleCosine:
		if cfg.Steps < 1 {
			return nil, errs.Invalid("steps", "%d: a cosine schedule needs its length", cfg.Steps)
		}
	default:
		return nil, errs.Invalid("schedule", "unknown schedule %q (want %q or %q)", cfg.Schedule, ScheduleConstant, ScheduleCosine)
	}
	switch cfg.Kind {
	case KindSGD:
		if !(cfg.Momentum >= 0 && cfg.Momentum < 1) {
			return nil, errs.Invalid("momentum", "%v is outside [0, 1)", cfg.Momentum)
		}
		return &sgd{cfg: cfg, vel: make([]float32, numParams)}, nil
	case KindAdam:
		if cfg.Beta1 == 0 {
			cfg.Beta1 = 0.9
		}
		if cfg.Beta2 == 0 {
			cfg.Beta2 = 0.999
		}
		if cfg.Epsilon == 0 {
			cfg.Epsilon = 1e-8
		}
		if !(cfg.Beta1 > 0 && cfg.Beta1 < 1) {
			return nil, errs.Invalid("beta1", "%v is outside (0, 1)", cfg.Beta1)
		}
		if !(cfg.Beta2 > 0 && cfg.Beta2 < 1) {
			return nil, errs.Invalid("beta2", "%v is outside (0, 1)", cfg.Beta2)
		}
		if !(cfg.Epsilon > 0) || math.IsInf(float64(cfg.Epsilon), 0) {
			return nil, errs.Invalid("epsilon", "%v is not a positive finite number", cfg.Epsilon)
		}
		return &adam{cfg: cfg, m: make([]float32, numParams), v: make([]float32, numParams)}, nil
	case "":
		return nil, errs.Invalid("optimizer", "missing (want %q or %q)", KindSGD, KindAdam)
	default:
		return nil, errs.Invalid("optimizer", "unknown optimizer %q (want %q or %q)", cfg.Kind, KindSGD, KindAdam)
	}
}

// lrAt is the learning rate of step t (1-based), computed in float64 and rounded once.
func (c Config) lrAt(t uint64) float64 {
	lr := float64(c.LR)
	if c.Schedule == ScheduleCosine {
		done := min(float64(t-1), float64(c.Steps)) / float64(c.Steps)
		lr *= 0.5 * (1 + math.Cos(math.Pi*done))
	}
	return lr
}

// The step count leads every state vector as two raw 32-bit halves, so it round-trips exactly.
func putCount(state []float32, t uint64) {
	state[0] = math.Float32frombits(uint32(t))
	state[1] = math.Float32frombits(uint32(t >> 32))
}

func getCount(state []float32) uint64 {
	return uint64(math.Float32bits(state[0])) | uint64(math.Float32bits(state[1]))<<32
}
