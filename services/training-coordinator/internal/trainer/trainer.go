// Package trainer fits a model in one process: the reference loop that `make train-mnist` runs and
// that the distributed workers must reproduce (same plan, same model kernels, same optimizer), so a
// distributed run can be compared against it.
package trainer

import (
	"context"
	"math"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/dataset"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/model"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/optim"
)

// MaxBatchSize bounds the scratch a step allocates.
const MaxBatchSize = 1 << 14

// Hyper are the hyper-parameters of a run. Steps, when positive, overrides Epochs.
type Hyper struct {
	Optimizer optim.Config
	BatchSize int
	Epochs    int
	Steps     int64
	// EvalEvery is the number of steps between evaluations on the test split (0: at the end of each
	// epoch). The last step is always evaluated.
	EvalEvery int64
	// TargetAccuracy, when positive, is watched: Result.Reached records when an evaluation first
	// reaches it, and StopAtTarget ends the run there.
	TargetAccuracy float64
	StopAtTarget   bool
}

// Progress is reported after every step; Accuracy is set only on steps that were evaluated.
type Progress struct {
	Step      int64 // steps done, 1-based
	Steps     int64 // steps planned
	Epoch     int
	Loss      float32 // mean loss of this step's batch
	Evaluated bool
	Accuracy  float64 // test accuracy after this step, when Evaluated
	Elapsed   time.Duration
}

// Result is a finished run.
type Result struct {
	Params   []float32
	Steps    int64
	Accuracy float64 // test accuracy of Params
	Elapsed  time.Duration
	// Reached and ReachedStep are when TargetAccuracy was first reached (zero if it was not, or
	// none was set).
	Reached     time.Duration
	ReachedStep int64
}

// Validate checks hyper-parameters against a training set of n samples; errors name the field.
func (h Hyper) Validate(n int) error {
	if h.BatchSize < 1 || h.BatchSize > MaxBatchSize {
		return errs.Invalid("batch_size", "%d is outside 1-%d", h.BatchSize, MaxBatchSize)
	}
	if h.BatchSize > n {
		return errs.Invalid("batch_size", "%d is larger than the %d training samples", h.BatchSize, n)
	}
	if h.Steps < 0 {
		return errs.Invalid("steps", "%d is negative", h.Steps)
	}
	if h.Steps == 0 && h.Epochs < 1 {
		return errs.Invalid("epochs", "%d is not positive (and no steps given)", h.Epochs)
	}
	if h.EvalEvery < 0 {
		return errs.Invalid("eval_every", "%d is negative", h.EvalEvery)
	}
	if !(h.TargetAccuracy >= 0 && h.TargetAccuracy <= 1) {
		return errs.Invalid("target_accuracy", "%v is outside [0, 1]", h.TargetAccuracy)
	}
	return nil
}

// CheckData reports whether the datasets fit spec (errors name the field).
func CheckData(spec model.Spec, train, test dataset.Dataset) error {
	if train.N == 0 {
		return errs.Invalid("dataset", "the training split is empty")
	}
	for _, d := range []dataset.Dataset{train, test} {
		if d.Dim != spec.Inputs {
			return errs.Invalid("model.inputs", "%d, but the dataset has %d features", spec.Inputs, d.Dim)
		}
		if d.Classes != spec.Classes {
			return errs.Invalid("model.classes", "%d, but the dataset has %d classes", spec.Classes, d.Classes)
		}
	}
	return nil
}

// Train fits spec to train from seed (initial parameters and data order), evaluating on test, and
// returns the final parameters. progress, if not nil, is called after every step from Train's
// goroutine. A cancelled ctx ends the run with its error; a loss that turns NaN or Inf ends it with
// FailedPrecondition (the learning rate is too high).
func Train(ctx context.Context, spec model.Spec, train, test dataset.Dataset, h Hyper, seed int64, progress func(Progress)) (Result, error) {
	m, err := model.New(spec)
	if err != nil {
		return Result{}, err
	}
	if err := CheckData(spec, train, test); err != nil {
		return Result{}, err
	}
	if err := h.Validate(train.N); err != nil {
		return Result{}, err
	}
	plan, err := dataset.NewPlan(train.N, h.BatchSize, seed)
	if err != nil {
		return Result{}, err
	}
	opt, err := optim.New(h.Optimizer, m.NumParams())
	if err != nil {
		return Result{}, err
	}
	steps := h.Steps
	if steps == 0 {
		steps = int64(h.Epochs) * int64(plan.StepsPerEpoch())
	}
	evalEvery := h.EvalEvery
	if evalEvery == 0 {
		evalEvery = int64(plan.StepsPerEpoch())
	}

	params := make([]float32, m.NumParams())
	grad := make([]float32, m.NumParams())
	m.Init(params, seed)
	x := make([]float32, h.BatchSize*spec.Inputs)
	y := make([]int32, h.BatchSize)
	eval := NewEvaluator(m, test)
	start := time.Now()
	res := Result{Params: params}
	perm, permEpoch := []int(nil), -1
	for step := int64(0); step < steps; step++ {
		if err := ctx.Err(); err != nil {
			return Result{}, err
		}
		if e := plan.Epoch(step); e != permEpoch {
			perm, permEpoch = plan.Perm(e), e
		}
		dataset.Gather(train, plan.Global(perm, step), x, y)
		loss := m.LossAndGrad(params, x, y, grad)
		if math.IsNaN(float64(loss)) || math.IsInf(float64(loss), 0) {
			return Result{}, errs.New(errs.KindFailedPrecondition, "training diverged at step %d (loss %v): lower the learning rate", step+1, loss)
		}
		opt.Step(params, grad)
		p := Progress{Step: step + 1, Steps: steps, Epoch: permEpoch, Loss: loss}
		if (step+1)%evalEvery == 0 || step+1 == steps {
			p.Evaluated, p.Accuracy = true, eval.Accuracy(params)
			res.Accuracy = p.Accuracy
		}
		p.Elapsed = time.Since(start)
		res.Steps, res.Elapsed = step+1, p.Elapsed
		if progress != nil {
			progress(p)
		}
		if p.Evaluated && h.TargetAccuracy > 0 && p.Accuracy >= h.TargetAccuracy && res.Reached == 0 {
			res.Reached, res.ReachedStep = p.Elapsed, p.Step
			if h.StopAtTarget {
				break
			}
		}
	}
	return res, nil
}

// Evaluator computes accuracy over a fixed dataset with one reusable prediction buffer.
type Evaluator struct {
	m    model.Model
	d    dataset.Dataset
	pred []int32
}

// NewEvaluator evaluates m on d.
func NewEvaluator(m model.Model, d dataset.Dataset) *Evaluator {
	return &Evaluator{m: m, d: d, pred: make([]int32, d.N)}
}

// Accuracy is the fraction of d that params classify correctly (0 for an empty d).
func (e *Evaluator) Accuracy(params []float32) float64 {
	if e.d.N == 0 {
		return 0
	}
	e.m.Predict(params, e.d.X, e.pred)
	right := 0
	for i, p := range e.pred {
		if p == e.d.Y[i] {
			right++
		}
	}
	return float64(right) / float64(e.d.N)
}
