package export

import (
	"context"
	"math"
	"testing"

	"github.com/bourse-dev/bourse/pkg/fraud"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/dataset"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/model"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/optim"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/trainer"
)

// TestFraudModelExport trains two-class logistic regression on the synthetic fraud set, exports it
// with a sigmoid head and the standardization folded in, and checks that the exported network scores
// raw pkg/fraud vectors exactly as the trained model scores standardized ones, and ranks the held-out
// payments as well as pkg/fraud's own fit (AUC within 0.01).
func TestFraudModelExport(t *testing.T) {
	const seed = 1
	train, test, err := dataset.Load(dataset.Fraud, dataset.Options{Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	spec := model.Spec{Kind: model.KindLogReg, Inputs: fraud.NumFeatures, Classes: 2}
	res, err := trainer.Train(context.Background(), spec, train, test, trainer.Hyper{
		Optimizer: optim.Config{Kind: optim.KindAdam, LR: 0.01, Schedule: optim.ScheduleCosine, Steps: int64(3 * (train.N / 256))},
		BatchSize: 256, Epochs: 3,
	}, seed, nil)
	if err != nil {
		t.Fatal(err)
	}
	net, err := Network(spec, res.Params, Sigmoid, FraudNames, "fraud test")
	if err != nil {
		t.Fatal(err)
	}
	if err := FoldStandardization(&net, train.Mean, train.Std); err != nil {
		t.Fatal(err)
	}
	raw, err := fraud.Generate(seed, dataset.FraudTrainSamples+dataset.FraudTestSamples)
	if err != nil {
		t.Fatal(err)
	}
	held := raw[dataset.FraudTrainSamples:]
	x := make([]float32, 0, len(held)*fraud.NumFeatures)
	for _, s := range held {
		x = append(x, s.Vector()...)
	}
	served, _, err := net.Forward(x, len(held))
	if err != nil {
		t.Fatal(err)
	}
	l := model.Layout(spec)[0]
	for i := range held {
		// The trained model's class-1 softmax probability on the standardized row.
		z := [2]float64{float64(res.Params[l.BOffset]), float64(res.Params[l.BOffset+1])}
		for k, v := range test.Row(i) {
			z[0] += float64(v) * float64(res.Params[l.WOffset+k*2])
			z[1] += float64(v) * float64(res.Params[l.WOffset+k*2+1])
		}
		p := 1 / (1 + math.Exp(z[0]-z[1]))
		if math.Abs(p-float64(served[i])) > 1e-4 {
			t.Fatalf("payment %d: trained model %v, exported network on raw features %v", i, p, served[i])
		}
	}

	ours := fraud.Model{Bias: net.Layers[0].B[0]}
	copy(ours.Weights[:], net.Layers[0].W)
	ref, err := fraud.DefaultSpec.Build()
	if err != nil {
		t.Fatal(err)
	}
	got, want := ours.AUC(held), ref.AUC(held)
	if !(got >= want-0.01) || got < 0.8 {
		t.Fatalf("held-out AUC %.4f, pkg/fraud's fit %.4f", got, want)
	}
	t.Logf("held-out AUC %.4f (pkg/fraud's fit %.4f), accuracy %.4f", got, want, res.Accuracy)
}
