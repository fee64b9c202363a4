package worker

import (
	"fmt"
	"time"

	trainingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/training/v1"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/coordinator"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/dataset"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/model"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/optim"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/trainer"
)

// jobCtx is what a worker builds once per job: data, model, plan and scratch. Owned by Run.
type jobCtx struct {
	id          string
	spec        *trainingv1.JobSpec
	total       int64
	train, test dataset.Dataset
	m           model.Model
	optCfg      optim.Config
	plan        dataset.Plan
	eval        *trainer.Evaluator
	evalEvery   int64
	collective  time.Duration
	perm        []int
	permEpoch   int
	x           []float32
	y           []int32
	vec         []float32 // gradient, then the loss, as one vector for the allreduce
}

// loadDataset is dataset.Load (a variable so that tests building many workers in one process can
// share one load).
var loadDataset = dataset.Load

func limit(n, l uint32) int {
	if l > 0 && int(l) < int(n) {
		return int(l)
	}
	return int(n)
}

// newJobCtx loads the job's dataset (the whole limited training split: each step's global batch
// is drawn from all of it and every rank takes its share, so N workers see exactly the samples one
// would) and builds its model.
func newJobCtx(j *trainingv1.Job, mnistDir string) (*jobCtx, error) {
	spec := j.GetSpec()
	lim := coordinator.LoadLimit(int(spec.GetTrainLimit()), int(spec.GetTestLimit()))
	train, test, err := loadDataset(spec.GetDataset(), dataset.Options{Limit: lim, Seed: int64(spec.GetSeed()), MNISTDir: mnistDir})
	if err != nil {
		return nil, fmt.Errorf("load dataset %s: %w", spec.GetDataset(), err)
	}
	train = train.Slice(0, limit(uint32(train.N), spec.GetTrainLimit()))
	test = test.Slice(0, limit(uint32(test.N), spec.GetTestLimit()))
	ms := model.Spec{Inputs: train.Dim, Classes: train.Classes}
	switch spec.GetModel().GetKind() {
	case trainingv1.ModelKind_MODEL_KIND_MLP:
		ms.Kind = model.KindMLP
	case trainingv1.ModelKind_MODEL_KIND_LOGISTIC:
		ms.Kind = model.KindLogReg
	}
	for _, h := range spec.GetModel().GetHidden() {
		ms.Hidden = append(ms.Hidden, int(h))
	}
	m, err := model.New(ms)
	if err != nil {
		return nil, err
	}
	// Evaluation runs next to the next step's gradient (see Worker.generation), and a model's
	// scratch is not shared: the evaluator has its own instance.
	em, err := model.New(ms)
	if err != nil {
		return nil, err
	}
	plan, err := dataset.NewPlan(train.N, int(spec.GetBatchSize()), int64(spec.GetSeed()))
	if err != nil {
		return nil, err
	}
	cfg := optim.Config{Kind: spec.GetOptimizer(), LR: spec.GetLearningRate(), Momentum: spec.GetMomentum()}
	if cfg.Kind == "" {
		cfg.Kind = optim.KindSGD
	}
	if _, err := optim.New(cfg, m.NumParams()); err != nil {
		return nil, err
	}
	jc := &jobCtx{
		id: j.GetJobId(), spec: spec, total: int64(j.GetTotalSteps()), train: train, test: test, m: m, optCfg: cfg, plan: plan,
		eval: trainer.NewEvaluator(em, test), evalEvery: int64(spec.GetEvalInterval()), permEpoch: -1,
		collective: time.Duration(spec.GetCollectiveTimeoutMs()) * time.Millisecond,
		x:          make([]float32, plan.Batch*train.Dim), y: make([]int32, plan.Batch), vec: make([]float32, m.NumParams()+1),
	}
	if jc.evalEvery == 0 {
		jc.evalEvery = int64(plan.StepsPerEpoch())
	}
	if jc.collective <= 0 {
		jc.collective = 5 * time.Second
	}
	return jc, nil
}

// gradient computes this rank's share of step's global batch into jc.vec: the mean gradient over
// its rows weighted by rows/batch, then the weighted loss, so that the allreduced vector is the
// global batch's mean gradient and loss whatever the world size.
func (jc *jobCtx) gradient(params []float32, step int64, rank, world int) int {
	if e := jc.plan.Epoch(step); e != jc.permEpoch {
		jc.perm, jc.permEpoch = jc.plan.Perm(e), e
	}
	idx := jc.plan.Local(jc.perm, step, rank, world)
	n, p := len(idx), jc.m.NumParams()
	grad := jc.vec[:p]
	if n == 0 {
		clear(jc.vec)
		return 0
	}
	dataset.Gather(jc.train, idx, jc.x[:n*jc.train.Dim], jc.y[:n])
	loss := jc.m.LossAndGrad(params, jc.x[:n*jc.train.Dim], jc.y[:n], grad)
	if n != jc.plan.Batch {
		w := float32(n) / float32(jc.plan.Batch)
		for i := range grad {
			grad[i] *= w
		}
		loss *= w
	}
	jc.vec[p] = loss
	return n
}
