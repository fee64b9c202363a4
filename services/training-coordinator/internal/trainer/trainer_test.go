package trainer

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/dataset"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/model"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/optim"
)

// mnist loads the first 6000 samples of each MNIST split once for every test, and returns the first
// limit of them (read-only views).
func mnist(t *testing.T, limit int) (dataset.Dataset, dataset.Dataset) {
	t.Helper()
	mnistOnce.Do(func() {
		mnistTrain, mnistTest, mnistErr = dataset.Load(dataset.MNIST, dataset.Options{Limit: 6000})
	})
	if mnistErr != nil {
		t.Fatal(mnistErr)
	}
	return mnistTrain.Slice(0, limit), mnistTest.Slice(0, min(limit, mnistTest.N))
}

var (
	mnistOnce             sync.Once
	mnistTrain, mnistTest dataset.Dataset
	mnistErr              error
)

var mlpSpec = model.Spec{Kind: model.KindMLP, Inputs: 784, Hidden: []int{64}, Classes: 10}

// TestTrainLearnsMNISTSubset: a short run on 6000 MNIST samples takes the MLP from chance (~10%) to
// well above 85% on 2000 held-out ones, and logreg past 80%, and the loss falls.
func TestTrainLearnsMNISTSubset(t *testing.T) {
	train, test := mnist(t, 6000)
	test = test.Slice(0, 2000)
	for _, c := range []struct {
		spec model.Spec
		want float64
	}{
		{mlpSpec, 0.85},
		{model.Spec{Kind: model.KindLogReg, Inputs: 784, Classes: 10}, 0.80},
	} {
		var first, last float32
		res, err := Train(context.Background(), c.spec, train, test, Hyper{
			Optimizer: optim.Config{Kind: optim.KindSGD, LR: 0.05, Momentum: 0.9},
			BatchSize: 64, Epochs: 2,
		}, 1, func(p Progress) {
			if p.Step == 1 {
				first = p.Loss
			}
			last = p.Loss
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Steps != 2*(6000/64) || res.Accuracy < c.want || !(last < first/2) {
			t.Fatalf("%s: %d steps, accuracy %.4f (want ≥ %v), loss %v → %v", c.spec.Kind, res.Steps, res.Accuracy, c.want, first, last)
		}
		t.Logf("%s: accuracy %.4f after %d steps in %v", c.spec.Kind, res.Accuracy, res.Steps, res.Elapsed)
	}
}

// TestTrainIsReproducible: the same seed gives the same final parameters bit for bit; another seed
// does not.
func TestTrainIsReproducible(t *testing.T) {
	train, test := mnist(t, 1000)
	h := Hyper{Optimizer: optim.Config{Kind: optim.KindAdam, LR: 1e-3}, BatchSize: 32, Steps: 40}
	run := func(seed int64) []float32 {
		res, err := Train(context.Background(), mlpSpec, train, test.Slice(0, 100), h, seed, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res.Params
	}
	a, b, c := run(7), run(7), run(8)
	same := func(x, y []float32) bool {
		for i := range x {
			if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
				return false
			}
		}
		return true
	}
	if !same(a, b) {
		t.Fatal("same seed, different parameters")
	}
	if same(a, c) {
		t.Fatal("different seeds, same parameters")
	}
}

func TestTrainStopsAtTargetAndOnCancel(t *testing.T) {
	train, test := mnist(t, 2000)
	h := Hyper{Optimizer: optim.Config{Kind: optim.KindSGD, LR: 0.05, Momentum: 0.9}, BatchSize: 50, Epochs: 20,
		EvalEvery: 10, TargetAccuracy: 0.7, StopAtTarget: true}
	res, err := Train(context.Background(), mlpSpec, train, test.Slice(0, 500), h, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accuracy < 0.7 || res.Reached == 0 || res.ReachedStep != res.Steps || res.Steps >= 20*40 || res.Steps%10 != 0 {
		t.Fatalf("target run: %+v", res)
	}

	ctx, cancel := context.WithCancel(context.Background())
	steps := 0
	_, err = Train(ctx, mlpSpec, train, test, Hyper{Optimizer: h.Optimizer, BatchSize: 50, Epochs: 20}, 1, func(Progress) {
		steps++
		if steps == 3 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) || steps != 3 {
		t.Fatalf("cancelled after 3 steps: %v after %d", err, steps)
	}
}

func TestTrainRejects(t *testing.T) {
	train, test := mnist(t, 100)
	good := Hyper{Optimizer: optim.Config{Kind: optim.KindSGD, LR: 0.1}, BatchSize: 10, Epochs: 1}
	for _, c := range []struct {
		spec  model.Spec
		h     Hyper
		field string
	}{
		{model.Spec{Kind: model.KindMLP, Inputs: 100, Hidden: []int{8}, Classes: 10}, good, "model.inputs"},
		{model.Spec{Kind: model.KindLogReg, Inputs: 784, Classes: 2}, good, "model.classes"},
		{model.Spec{Kind: "svm", Inputs: 784, Classes: 10}, good, "kind"},
		{mlpSpec, Hyper{Optimizer: good.Optimizer, BatchSize: 0, Epochs: 1}, "batch_size"},
		{mlpSpec, Hyper{Optimizer: good.Optimizer, BatchSize: 101, Epochs: 1}, "batch_size"},
		{mlpSpec, Hyper{Optimizer: good.Optimizer, BatchSize: 10}, "epochs"},
		{mlpSpec, Hyper{Optimizer: optim.Config{Kind: optim.KindSGD, LR: -1}, BatchSize: 10, Epochs: 1}, "learning_rate"},
		{mlpSpec, Hyper{Optimizer: good.Optimizer, BatchSize: 10, Epochs: 1, TargetAccuracy: 2}, "target_accuracy"},
	} {
		_, err := Train(context.Background(), c.spec, train, test, c.h, 1, nil)
		if errs.KindOf(err) != errs.KindInvalidArgument || !strings.HasPrefix(err.Error(), c.field+":") {
			t.Errorf("%+v %+v: %v, want InvalidArgument naming %s", c.spec, c.h, err, c.field)
		}
	}
	// A learning rate far past any sense overflows the logits: a clear error, not NaN parameters.
	logreg := model.Spec{Kind: model.KindLogReg, Inputs: 784, Classes: 10}
	_, err := Train(context.Background(), logreg, train, test, Hyper{Optimizer: optim.Config{Kind: optim.KindSGD, LR: 1e38}, BatchSize: 10, Epochs: 5}, 1, nil)
	if errs.KindOf(err) != errs.KindFailedPrecondition || !strings.Contains(err.Error(), "diverged") {
		t.Fatalf("lr 1e38: %v", err)
	}
}
