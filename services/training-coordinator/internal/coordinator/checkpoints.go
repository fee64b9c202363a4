package coordinator

import (
	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/checkpoint"
)

// UploadCheckpoint stores rank 0's state at step. Only the job's current generation may write, and
// only state of the job's shape with finite values: a stale or malformed upload cannot replace a
// good checkpoint.
func (c *Coordinator) UploadCheckpoint(jobID string, gen uint64, step int64, params, opt []float32) (string, error) {
	c.mu.Lock()
	j, ok := c.jobs[jobID]
	if !ok {
		c.mu.Unlock()
		return "", errs.New(errs.KindNotFound, "job %q not found", jobID)
	}
	numParams, total, cur := j.shape.NumParams, j.TotalSteps, j.Generation
	c.mu.Unlock()
	switch {
	case gen != cur:
		return "", errs.New(errs.KindFailedPrecondition, "generation: %d is not the job's current generation %d", gen, cur)
	case len(params) != numParams:
		return "", errs.Invalid("params", "%d values, the model has %d parameters", len(params), numParams)
	case step <= 0 || step > total:
		return "", errs.Invalid("step", "%d is outside 1-%d", step, total)
	case !finite(params):
		return "", errs.Invalid("params", "not finite (NaN or Inf)")
	case !finite(opt):
		return "", errs.Invalid("optimizer_state", "not finite (NaN or Inf)")
	}
	// Written outside the lock: an fsync must not hold up the rendezvous.
	path, err := c.cfg.Checkpoints.Write(checkpoint.State{JobID: jobID, Step: uint64(step), Params: params, Optimizer: opt})
	if err != nil {
		return "", errs.Wrap(errs.KindUnavailable, err, "writing checkpoint")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if step > j.CheckpointStep {
		j.CheckpointStep, j.CheckpointPath = step, path
		if err := c.save(j); err != nil {
			return "", err
		}
	}
	return path, nil
}

// GetCheckpoint returns a job's latest checkpoint, verified.
func (c *Coordinator) GetCheckpoint(jobID string) (checkpoint.State, error) {
	c.mu.Lock()
	j, ok := c.jobs[jobID]
	if !ok {
		c.mu.Unlock()
		return checkpoint.State{}, errs.New(errs.KindNotFound, "job %q not found", jobID)
	}
	path, step, numParams := j.CheckpointPath, j.CheckpointStep, j.shape.NumParams
	c.mu.Unlock()
	if step == 0 {
		return checkpoint.State{}, errs.New(errs.KindFailedPrecondition, "job %q has no checkpoint", jobID)
	}
	st, err := checkpoint.Read(path, jobID, numParams)
	if err != nil {
		return st, err
	}
	if int64(st.Step) != step {
		return checkpoint.State{}, errs.New(errs.KindFailedPrecondition, "checkpoint %s is of step %d, the job recorded %d", path, st.Step, step)
	}
	return st, nil
}

func finite(v []float32) bool {
	for _, x := range v {
		if x-x != 0 {
			return false
		}
	}
	return true
}
