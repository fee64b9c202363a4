package worker

import (
	"context"
	"math"
	"os"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	trainingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/training/v1"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/dataset"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/model"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/optim"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/trainer"
)

// TestMain makes the in-process workers of these tests share one load of each dataset: the real
// loader reads and checks all of MNIST's files whatever the limit, slowly under the race detector.
func TestMain(m *testing.M) {
	type key struct {
		name string
		opts dataset.Options
	}
	type val struct {
		train, test dataset.Dataset
		err         error
	}
	var mu sync.Mutex
	memo := map[key]val{}
	loadDataset = func(name string, opts dataset.Options) (dataset.Dataset, dataset.Dataset, error) {
		mu.Lock()
		defer mu.Unlock()
		k := key{name, opts}
		v, ok := memo[k]
		if !ok {
			v.train, v.test, v.err = dataset.Load(name, opts)
			memo[k] = v
		}
		// Workers only read their datasets.
		return v.train, v.test, v.err
	}
	os.Exit(m.Run())
}

func testJob() *trainingv1.Job {
	return &trainingv1.Job{JobId: "t", TotalSteps: 10, Spec: &trainingv1.JobSpec{
		Dataset: "mnist", Model: &trainingv1.ModelSpec{Kind: trainingv1.ModelKind_MODEL_KIND_MLP, Hidden: []uint32{16}},
		TrainLimit: 500, TestLimit: 100, LearningRate: 0.1, Momentum: 0.9, BatchSize: 30, Seed: 3, Optimizer: optim.KindSGD,
	}}
}

func runSteps(t *testing.T, world int, steps int64) []float32 {
	t.Helper()
	ranks := newRanks(t, testJob(), world)
	var wg sync.WaitGroup
	for _, rk := range ranks {
		wg.Go(func() {
			for s := range steps {
				if _, err := rk.step(s); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, rk := range ranks[1:] {
		for i := range rk.params {
			if math.Float32bits(rk.params[i]) != math.Float32bits(ranks[0].params[i]) {
				t.Fatalf("world %d: rank %d's parameter %d differs from rank 0's", world, rk.r, i)
			}
		}
	}
	return ranks[0].params
}

// One worker over the ring reproduces the single-process trainer bit for bit; two and three
// workers (the batch split and re-weighted, the sum in the ring's order) stay within float32
// rounding of it, and every rank of a world holds the same bits.
func TestDistributedStepsMatchTheTrainer(t *testing.T) {
	const steps = 10
	j := testJob()
	train, test, err := loadDataset("mnist", dataset.Options{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	test = test.Slice(0, 100)
	spec := model.Spec{Kind: model.KindMLP, Inputs: train.Dim, Hidden: []int{16}, Classes: train.Classes}
	res, err := trainer.Train(context.Background(), spec, train, test, trainer.Hyper{
		Optimizer: optim.Config{Kind: optim.KindSGD, LR: j.GetSpec().GetLearningRate(), Momentum: j.GetSpec().GetMomentum()},
		BatchSize: 30, Steps: steps,
	}, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	one := runSteps(t, 1, steps)
	for i := range one {
		if math.Float32bits(one[i]) != math.Float32bits(res.Params[i]) {
			t.Fatalf("one worker: parameter %d is %v, the trainer's %v", i, one[i], res.Params[i])
		}
	}
	for _, world := range []int{2, 3} {
		got := runSteps(t, world, steps)
		var worst float64
		for i := range got {
			d := math.Abs(float64(got[i]-res.Params[i])) / (1e-3 + math.Abs(float64(res.Params[i])))
			worst = max(worst, d)
		}
		if worst > 1e-3 {
			t.Fatalf("%d workers: parameters differ from the trainer's by up to %.2g (relative)", world, worst)
		}
		t.Logf("%d workers: largest relative difference from one worker %.2g", world, worst)
	}
}

// GetState serves rank 0's published state for its generation only: an older generation is
// refused, a newer one waits (bounded by the caller's deadline) until it is published.
func TestGetStateByGeneration(t *testing.T) {
	w := New(Config{ID: "w"}, nil)
	w.publish(&published{job: "j", gen: 4, step: 9, params: []byte{1, 0, 0, 0}})
	resp, err := w.GetState(context.Background(), &trainingv1.GetStateRequest{JobId: "j", Generation: 4})
	if err != nil || resp.GetStep() != 9 {
		t.Fatalf("current generation: %v %v", resp, err)
	}
	if _, err := w.GetState(context.Background(), &trainingv1.GetStateRequest{JobId: "j", Generation: 3}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("stale generation: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := w.GetState(ctx, &trainingv1.GetStateRequest{JobId: "j", Generation: 5}); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("unpublished generation: %v", err)
	}
	got := make(chan uint64, 1)
	go func() {
		r, err := w.GetState(context.Background(), &trainingv1.GetStateRequest{JobId: "j", Generation: 5})
		if err != nil {
			t.Error(err)
		}
		got <- r.GetStep()
	}()
	time.Sleep(50 * time.Millisecond)
	w.publish(&published{job: "j", gen: 5, step: 12})
	if s := <-got; s != 12 {
		t.Fatalf("waited for generation 5, got step %d", s)
	}
}
