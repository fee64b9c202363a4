package dataset

import (
	"math/rand/v2"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// Plan is the order in which a job visits a dataset of N samples in global batches of Batch: each
// epoch is a permutation of [0, N) drawn from (Seed, epoch), cut into StepsPerEpoch batches (the
// last short one is dropped so every step has exactly Batch samples). Step s is batch
// s % StepsPerEpoch of epoch s / StepsPerEpoch. With N workers, rank r takes ShardRange(Batch, r, N)
// of each global batch; the workers together see exactly the samples one worker would. LossAndGrad
// returns a mean over the rows it is given, so rank r scales its gradient by len(local)/Batch before
// the allreduce sums them: the sum is the global batch's mean gradient (equal to one worker's up to
// float rounding, since the additions happen in another order).
type Plan struct {
	N, Batch int
	Seed     int64
}

// NewPlan validates n and batch.
func NewPlan(n, batch int, seed int64) (Plan, error) {
	if batch < 1 {
		return Plan{}, errs.Invalid("batch_size", "%d is not positive", batch)
	}
	if n < batch {
		return Plan{}, errs.Invalid("batch_size", "%d is larger than the %d training samples", batch, n)
	}
	return Plan{N: n, Batch: batch, Seed: seed}, nil
}

// StepsPerEpoch is the number of full global batches in one epoch.
func (p Plan) StepsPerEpoch() int { return p.N / p.Batch }

// Perm returns epoch's permutation of [0, N).
func (p Plan) Perm(epoch int) []int {
	// PCG seeded from (seed, epoch): stable across Go releases, unlike math/rand's global source.
	r := rand.New(rand.NewPCG(uint64(p.Seed), uint64(epoch)^0x9e3779b97f4a7c15))
	perm := make([]int, p.N)
	for i := range perm {
		perm[i] = i
	}
	r.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
	return perm
}

// Global returns the sample indices of global step (a view into perm, which must be
// Perm(step / StepsPerEpoch)).
func (p Plan) Global(perm []int, step int64) []int {
	b := int(step % int64(p.StepsPerEpoch()))
	return perm[b*p.Batch : (b+1)*p.Batch]
}

// Local returns rank's part of global step among world workers.
func (p Plan) Local(perm []int, step int64, rank, world int) []int {
	g := p.Global(perm, step)
	lo, hi := ShardRange(len(g), rank, world)
	return g[lo:hi]
}

// Epoch is the epoch that step falls in.
func (p Plan) Epoch(step int64) int { return int(step / int64(p.StepsPerEpoch())) }
