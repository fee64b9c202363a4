// Package coordinator owns training jobs: their specs and status (durable in SQLite), the workers'
// rendezvous (generations, ranks, peers), membership by heartbeat, the per-step decision every
// member of a generation receives, checkpoints and progress events. It is never on the gradient
// path: workers exchange gradients among themselves (see internal/worker).
package coordinator

import (
	"fmt"
	"math"
	"regexp"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/dataset"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/model"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/optim"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/trainer"
)

// Status of a job.
type Status int

const (
	StatusPending   Status = 1 // waiting for min workers to start
	StatusRunning   Status = 2
	StatusWaiting   Status = 3 // fewer than min workers alive; fails after WaitTimeout
	StatusSucceeded Status = 4
	StatusFailed    Status = 5
	StatusStopped   Status = 6
)

func (s Status) String() string {
	switch s {
	case StatusPending:
		return "pending"
	case StatusRunning:
		return "running"
	case StatusWaiting:
		return "waiting"
	case StatusSucceeded:
		return "succeeded"
	case StatusFailed:
		return "failed"
	case StatusStopped:
		return "stopped"
	}
	return fmt.Sprintf("status(%d)", int(s))
}

// Runnable reports whether workers may take part in a job of this status.
func (s Status) Runnable() bool {
	return s == StatusPending || s == StatusRunning || s == StatusWaiting
}

// Limits on a spec, so that one request cannot tie the workers up without bound.
const (
	MaxWorkers        = 64
	MaxSteps          = 10_000_000
	MaxTimeout        = 10 * time.Minute
	DefaultWait       = 30 * time.Second
	DefaultHeartbeat  = 3 * time.Second
	DefaultCollective = 5 * time.Second
)

// Spec is what StartJob asks for. Field names in errors are the API's (spec.<field>).
type Spec struct {
	Dataset         string        `json:"dataset"`
	ModelKind       string        `json:"model_kind"` // model.KindMLP or model.KindLogReg
	Hidden          []int         `json:"hidden,omitempty"`
	TrainLimit      int           `json:"train_limit,omitempty"`
	TestLimit       int           `json:"test_limit,omitempty"`
	Optimizer       string        `json:"optimizer"`
	LearningRate    float32       `json:"learning_rate"`
	Momentum        float32       `json:"momentum,omitempty"`
	BatchSize       int           `json:"batch_size"`
	Steps           int64         `json:"steps,omitempty"`
	Epochs          int           `json:"epochs,omitempty"`
	Seed            int64         `json:"seed"`
	MinWorkers      int           `json:"min_workers"`
	MaxWorkers      int           `json:"max_workers"`
	CheckpointEvery int64         `json:"checkpoint_every,omitempty"`
	EvalEvery       int64         `json:"eval_every,omitempty"`
	TargetAccuracy  float64       `json:"target_accuracy,omitempty"`
	WaitTimeout     time.Duration `json:"wait_timeout"`
	Heartbeat       time.Duration `json:"heartbeat_timeout"`
	Collective      time.Duration `json:"collective_timeout"`
	// ExportModel names the inference model a succeeded job is exported as ("" no export).
	ExportModel string `json:"export_model,omitempty"`
}

// Shape is what a spec resolves to once its dataset is known.
type Shape struct {
	Model      model.Spec
	NumParams  int
	TrainN     int
	TotalSteps int64
}

// DataInfo returns the size and shape of a dataset's (limited) training split; the coordinator
// caches it.
type DataInfo func(name string, limit int, seed int64) (n, dim, classes int, err error)

var (
	jobIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	// modelPattern is what inference accepts as a model directory name.
	modelPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
)

// ValidJobID reports whether id may name a job (it is also a directory name).
func ValidJobID(id string) error {
	if !jobIDPattern.MatchString(id) {
		return errs.Invalid("job_id", "%q is not 1-64 of [A-Za-z0-9._-] starting with a letter or digit", id)
	}
	return nil
}

// withDefaults fills the optional durations and the optimizer.
func (s Spec) withDefaults() Spec {
	if s.Optimizer == "" {
		s.Optimizer = optim.KindSGD
	}
	if s.WaitTimeout == 0 {
		s.WaitTimeout = DefaultWait
	}
	if s.Heartbeat == 0 {
		s.Heartbeat = DefaultHeartbeat
	}
	if s.Collective == 0 {
		s.Collective = DefaultCollective
	}
	return s
}

// Validate checks the spec and resolves its model against the dataset; errors name the field.
func (s Spec) Validate(info DataInfo) (Shape, error) {
	var sh Shape
	switch s.Dataset {
	case dataset.MNIST, dataset.Fraud:
	case "":
		return sh, errs.Invalid("spec.dataset", "missing (want %q or %q)", dataset.MNIST, dataset.Fraud)
	default:
		return sh, errs.Invalid("spec.dataset", "unknown dataset %q (want %q or %q)", s.Dataset, dataset.MNIST, dataset.Fraud)
	}
	switch s.ModelKind {
	case model.KindMLP, model.KindLogReg:
	case "":
		return sh, errs.Invalid("spec.model.kind", "missing (want MODEL_KIND_MLP or MODEL_KIND_LOGISTIC)")
	default:
		return sh, errs.Invalid("spec.model.kind", "unknown model kind %q", s.ModelKind)
	}
	switch {
	case s.MinWorkers < 1:
		return sh, errs.Invalid("spec.min_workers", "%d: a job needs at least one worker", s.MinWorkers)
	case s.MaxWorkers < 1:
		return sh, errs.Invalid("spec.max_workers", "%d: a job needs at least one worker", s.MaxWorkers)
	case s.MinWorkers > s.MaxWorkers:
		return sh, errs.Invalid("spec.min_workers", "%d is more than max_workers %d", s.MinWorkers, s.MaxWorkers)
	case s.MaxWorkers > MaxWorkers:
		return sh, errs.Invalid("spec.max_workers", "%d is more than %d", s.MaxWorkers, MaxWorkers)
	case !(s.LearningRate > 0) || math.IsInf(float64(s.LearningRate), 0):
		return sh, errs.Invalid("spec.learning_rate", "%v is not a positive finite number", s.LearningRate)
	case s.BatchSize < 1:
		return sh, errs.Invalid("spec.batch_size", "%d is not positive", s.BatchSize)
	case s.BatchSize > trainer.MaxBatchSize:
		return sh, errs.Invalid("spec.batch_size", "%d is more than %d", s.BatchSize, trainer.MaxBatchSize)
	case s.Steps < 0 || s.Steps > MaxSteps:
		return sh, errs.Invalid("spec.steps", "%d is outside 0-%d", s.Steps, MaxSteps)
	case s.Steps == 0 && s.Epochs < 1:
		return sh, errs.Invalid("spec.steps", "give steps or epochs")
	case s.Epochs < 0:
		return sh, errs.Invalid("spec.epochs", "%d is negative", s.Epochs)
	case s.TrainLimit < 0:
		return sh, errs.Invalid("spec.train_limit", "%d is negative", s.TrainLimit)
	case s.TestLimit < 0:
		return sh, errs.Invalid("spec.test_limit", "%d is negative", s.TestLimit)
	case s.CheckpointEvery < 0:
		return sh, errs.Invalid("spec.checkpoint_interval", "%d is negative", s.CheckpointEvery)
	case s.EvalEvery < 0:
		return sh, errs.Invalid("spec.eval_interval", "%d is negative", s.EvalEvery)
	case !(s.TargetAccuracy >= 0 && s.TargetAccuracy <= 1):
		return sh, errs.Invalid("spec.target_accuracy", "%v is outside [0, 1]", s.TargetAccuracy)
	}
	if s.ExportModel != "" && !modelPattern.MatchString(s.ExportModel) {
		return sh, errs.Invalid("spec.export_model", "%q is not a model name (letters, digits, _ . -, at most 128)", s.ExportModel)
	}
	for field, d := range map[string]time.Duration{"spec.wait_timeout_ms": s.WaitTimeout, "spec.heartbeat_timeout_ms": s.Heartbeat, "spec.collective_timeout_ms": s.Collective} {
		if d < 0 || d > MaxTimeout {
			return sh, errs.Invalid(field, "%v is outside 0-%v", d, MaxTimeout)
		}
	}
	if _, err := optim.New(optim.Config{Kind: s.Optimizer, LR: s.LearningRate, Momentum: s.Momentum}, 1); err != nil {
		if e, ok := err.(*errs.Error); ok && e.Field != "" {
			e.Field = "spec." + e.Field
		}
		return sh, err
	}
	n, dim, classes, err := info(s.Dataset, max(s.TrainLimit, s.TestLimit), s.Seed)
	if err != nil {
		return sh, err
	}
	n = limitN(n, s.TrainLimit)
	sh.Model = model.Spec{Kind: s.ModelKind, Inputs: dim, Hidden: s.Hidden, Classes: classes}
	if err := sh.Model.Validate(); err != nil {
		if e, ok := err.(*errs.Error); ok && e.Field != "" {
			e.Field = "spec.model." + e.Field
		}
		return sh, err
	}
	m, err := model.New(sh.Model)
	if err != nil {
		return sh, err
	}
	sh.NumParams, sh.TrainN = m.NumParams(), n
	if s.BatchSize > n {
		return sh, errs.Invalid("spec.batch_size", "%d is larger than the %d training samples", s.BatchSize, n)
	}
	sh.TotalSteps = s.Steps
	if sh.TotalSteps == 0 {
		sh.TotalSteps = int64(s.Epochs) * int64(n/s.BatchSize)
		if sh.TotalSteps > MaxSteps {
			return sh, errs.Invalid("spec.epochs", "%d epochs are %d steps, more than %d", s.Epochs, sh.TotalSteps, MaxSteps)
		}
	}
	return sh, nil
}

func limitN(n, limit int) int {
	if limit > 0 && limit < n {
		return limit
	}
	return n
}

// LoadLimit is the limit a worker loads the dataset with (the standardization of the fraud set
// depends on it, so an export must load the same): the larger of the two limits when both are set,
// else everything.
func LoadLimit(trainLimit, testLimit int) int {
	if trainLimit > 0 && testLimit > 0 {
		return max(trainLimit, testLimit)
	}
	return 0
}
