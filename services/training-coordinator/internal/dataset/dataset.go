// Package dataset loads the training sets (MNIST from its idx files, a synthetic payments-fraud set
// from a seed) into memory and plans the order in which a job visits them. The plan is a function of
// (seed, epoch, step) only, so one worker and N workers sharing a global batch see the same samples,
// and a job resumed from a checkpoint continues with the batch it would have taken.
package dataset

import (
	"github.com/bourse-dev/bourse/pkg/errs"
)

// Names of the datasets Load knows.
const (
	MNIST = "mnist"
	Fraud = "fraud"
)

// Dataset is a labelled set held in memory: X is N×Dim row-major, Y the N labels in [0, Classes).
// When Mean and Std are set, X holds standardized features (raw − Mean)/Std: a model trained on it
// is exported with them folded into its first layer (export.FoldStandardization) so it serves raw
// features.
type Dataset struct {
	X         []float32
	Y         []int32
	N, Dim    int
	Classes   int
	Mean, Std []float32
}

// Options tune Load.
type Options struct {
	Limit    int    // keep the first Limit samples of each split (0 = all)
	Seed     int64  // generator seed of synthetic sets (fraud)
	MNISTDir string // directory holding the four idx .gz files ("" = the GoMNIST module's data dir)
}

// Load returns the train and test splits of the named dataset.
func Load(name string, opts Options) (train, test Dataset, err error) {
	if opts.Limit < 0 {
		return Dataset{}, Dataset{}, errs.Invalid("limit", "%d is negative", opts.Limit)
	}
	switch name {
	case MNIST:
		return loadMNIST(opts)
	case Fraud:
		return loadFraud(opts)
	case "":
		return Dataset{}, Dataset{}, errs.Invalid("dataset", "missing (want %q or %q)", MNIST, Fraud)
	default:
		return Dataset{}, Dataset{}, errs.Invalid("dataset", "unknown dataset %q (want %q or %q)", name, MNIST, Fraud)
	}
}

// Row returns sample i's features (a view into X).
func (d Dataset) Row(i int) []float32 { return d.X[i*d.Dim : (i+1)*d.Dim : (i+1)*d.Dim] }

// Slice returns samples [lo, hi) as a view sharing d's arrays.
func (d Dataset) Slice(lo, hi int) Dataset {
	return Dataset{X: d.X[lo*d.Dim : hi*d.Dim], Y: d.Y[lo:hi], N: hi - lo, Dim: d.Dim, Classes: d.Classes, Mean: d.Mean, Std: d.Std}
}

// Shard returns worker rank's contiguous part of d when it is split among world workers (sizes
// differ by at most one; see ShardRange).
func Shard(d Dataset, rank, world int) Dataset {
	lo, hi := ShardRange(d.N, rank, world)
	return d.Slice(lo, hi)
}

// ShardRange is the half-open range of n items that rank owns among world: the first n%world ranks
// get one more. It panics on rank outside [0, world): that is a caller bug, not input.
func ShardRange(n, rank, world int) (lo, hi int) {
	if world < 1 || rank < 0 || rank >= world {
		panic("dataset: rank outside [0, world)")
	}
	q, r := n/world, n%world
	lo = rank*q + min(rank, r)
	hi = lo + q
	if rank < r {
		hi++
	}
	return lo, hi
}

// Gather copies the samples idx of d into x (len(idx)×Dim) and y (len(idx)).
func Gather(d Dataset, idx []int, x []float32, y []int32) {
	for j, i := range idx {
		copy(x[j*d.Dim:(j+1)*d.Dim], d.Row(i))
		y[j] = d.Y[i]
	}
}
