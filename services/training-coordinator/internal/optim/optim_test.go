package optim

import (
	"math"
	"strings"
	"testing"

	"github.com/bourse-dev/bourse/pkg/errs"
)

func mustNew(t *testing.T, cfg Config, n int) Optimizer {
	t.Helper()
	o, err := New(cfg, n)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestSGDMomentumByHand: two steps of v ← μv + g + λp, p ← p − ηv computed by hand.
func TestSGDMomentumByHand(t *testing.T) {
	o := mustNew(t, Config{Kind: KindSGD, LR: 0.5, Momentum: 0.5, WeightDecay: 0.25}, 2)
	p := []float32{1, -2}
	o.Step(p, []float32{2, 4}) // v = (2+0.25, 4-0.5) = (2.25, 3.5); p = (1-1.125, -2-1.75)
	if p[0] != -0.125 || p[1] != -3.75 {
		t.Fatalf("after one step %v", p)
	}
	o.Step(p, []float32{0, 0}) // v = (1.125-0.03125, 1.75-0.9375) = (1.09375, 0.8125)
	if p[0] != -0.125-0.546875 || p[1] != -3.75-0.40625 {
		t.Fatalf("after two steps %v", p)
	}
}

// quadGrad is the gradient of Σ (i+1)(p_i − 1)², minimised at p = 1.
func quadGrad(p, g []float32) {
	for i := range p {
		g[i] = 2 * float32(i+1) * (p[i] - 1)
	}
}

func TestOptimizersConverge(t *testing.T) {
	for _, cfg := range []Config{
		{Kind: KindSGD, LR: 0.05, Momentum: 0.9},
		{Kind: KindAdam, LR: 0.05},
	} {
		o := mustNew(t, cfg, 4)
		p, g := []float32{5, -3, 0, 2}, make([]float32, 4)
		for range 2000 {
			quadGrad(p, g)
			o.Step(p, g)
		}
		for i, v := range p {
			if math.Abs(float64(v-1)) > 1e-3 {
				t.Fatalf("%s: p[%d] = %v, want 1", cfg.Kind, i, v)
			}
		}
	}
}

// TestStateRoundTrip: an optimizer restored from another's state continues with the same bits.
func TestStateRoundTrip(t *testing.T) {
	for _, cfg := range []Config{
		{Kind: KindSGD, LR: 0.01, Momentum: 0.9, WeightDecay: 1e-4},
		{Kind: KindSGD, LR: 0.01, Momentum: 0.9, Schedule: ScheduleCosine, Steps: 20},
		{Kind: KindAdam, LR: 0.01, WeightDecay: 1e-4},
		{Kind: KindAdam, LR: 0.01, Schedule: ScheduleCosine, Steps: 20},
	} {
		a := mustNew(t, cfg, 5)
		p, g := []float32{1, 2, 3, 4, 5}, make([]float32, 5)
		for range 7 {
			quadGrad(p, g)
			a.Step(p, g)
		}
		b := mustNew(t, cfg, 5)
		if err := b.SetState(a.State()); err != nil {
			t.Fatal(err)
		}
		pb := append([]float32(nil), p...)
		for range 5 {
			quadGrad(p, g)
			a.Step(p, g)
			quadGrad(pb, g)
			b.Step(pb, g)
		}
		for i := range p {
			if math.Float32bits(p[i]) != math.Float32bits(pb[i]) {
				t.Fatalf("%s: restored optimizer diverged at %d: %v vs %v", cfg.Kind, i, p[i], pb[i])
			}
		}
		// A fresh optimizer (state not restored) does not continue the same way: the state matters.
		c := mustNew(t, cfg, 5)
		pc := append([]float32(nil), pb...)
		pb2 := append([]float32(nil), pb...)
		quadGrad(pc, g)
		c.Step(pc, g)
		quadGrad(pb2, g)
		b.Step(pb2, g)
		same := true
		for i := range pc {
			same = same && pc[i] == pb2[i]
		}
		if same {
			t.Fatalf("%s: a fresh optimizer stepped like a restored one", cfg.Kind)
		}
	}
}

func TestSetStateRejects(t *testing.T) {
	sgd := mustNew(t, Config{Kind: KindSGD, LR: 0.1}, 3)
	adam := mustNew(t, Config{Kind: KindAdam, LR: 0.1}, 3)
	for name, c := range map[string]struct {
		o     Optimizer
		state []float32
	}{
		"sgd short":     {sgd, []float32{0, 0, 1, 2}},
		"sgd nan":       {sgd, []float32{0, 0, 1, float32(math.NaN()), 2}},
		"adam short":    {adam, make([]float32, 7)},
		"adam inf":      {adam, []float32{0, 0, 1, 1, float32(math.Inf(1)), 1, 1, 1}},
		"adam negative": {adam, []float32{0, 0, 1, 1, 1, 1, -1, 1}},
	} {
		before := c.o.State()
		err := c.o.SetState(c.state)
		if errs.KindOf(err) != errs.KindInvalidArgument || !strings.HasPrefix(err.Error(), "optimizer_state:") {
			t.Errorf("%s: %v", name, err)
		}
		after := c.o.State()
		for i := range before {
			if math.Float32bits(before[i]) != math.Float32bits(after[i]) {
				t.Errorf("%s: a refused state changed the optimizer", name)
				break
			}
		}
	}
}

func TestNewRejects(t *testing.T) {
	nan := float32(math.NaN())
	for _, c := range []struct {
		cfg   Config
		n     int
		field string
	}{
		{Config{Kind: "rmsprop", LR: 0.1}, 1, "optimizer"},
		{Config{LR: 0.1}, 1, "optimizer"},
		{Config{Kind: KindSGD, LR: 0}, 1, "learning_rate"},
		{Config{Kind: KindSGD, LR: -1}, 1, "learning_rate"},
		{Config{Kind: KindSGD, LR: nan}, 1, "learning_rate"},
		{Config{Kind: KindSGD, LR: 0.1, Momentum: 1}, 1, "momentum"},
		{Config{Kind: KindSGD, LR: 0.1, WeightDecay: -1}, 1, "weight_decay"},
		{Config{Kind: KindAdam, LR: 0.1, Beta1: 1}, 1, "beta1"},
		{Config{Kind: KindAdam, LR: 0.1, Beta2: -0.5}, 1, "beta2"},
		{Config{Kind: KindAdam, LR: 0.1, Epsilon: -1}, 1, "epsilon"},
		{Config{Kind: KindSGD, LR: 0.1}, 0, "num_params"},
		{Config{Kind: KindSGD, LR: 0.1, Schedule: "step"}, 1, "schedule"},
		{Config{Kind: KindSGD, LR: 0.1, Schedule: ScheduleCosine}, 1, "steps"},
	} {
		_, err := New(c.cfg, c.n)
		if errs.KindOf(err) != errs.KindInvalidArgument || !strings.HasPrefix(err.Error(), c.field+":") {
			t.Errorf("%+v: %v, want InvalidArgument naming %s", c.cfg, err, c.field)
		}
	}
}

// TestCosineSchedule: plain SGD (no momentum) with a unit gradient moves each step by exactly the
// scheduled rate: LR at the first step, half of it at mid-schedule, nothing after the end.
func TestCosineSchedule(t *testing.T) {
	o := mustNew(t, Config{Kind: KindSGD, LR: 1, Schedule: ScheduleCosine, Steps: 4}, 1)
	want := []float64{1, 0.5 * (1 + math.Cos(math.Pi/4)), 0.5, 0.5 * (1 + math.Cos(3*math.Pi/4)), 0, 0}
	for i, w := range want {
		p := []float32{0}
		o.Step(p, []float32{1})
		if math.Abs(float64(-p[0])-w) > 1e-6 {
			t.Fatalf("step %d moved by %v, want %v", i+1, -p[0], w)
		}
	}
}
