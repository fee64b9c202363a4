package training_test

import (
	"testing"
	"time"

	trainingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/training/v1"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/dataset"
)

// The synthetic payments-fraud set trains the same way: logistic regression on two workers does
// better on held-out payments than always answering the majority class.
func TestFraudLogisticRegressionOnTwoWorkers(t *testing.T) {
	_, test, err := dataset.Load(dataset.Fraud, dataset.Options{Limit: 5000, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	frauds := 0
	for _, y := range test.Y {
		frauds += int(y)
	}
	majority := float32(max(frauds, test.N-frauds)) / float32(test.N)

	c := newCluster(t)
	c.start("fraud", &trainingv1.JobSpec{
		Dataset: "fraud", Model: &trainingv1.ModelSpec{Kind: trainingv1.ModelKind_MODEL_KIND_LOGISTIC},
		TrainLimit: 5000, TestLimit: 5000, LearningRate: 0.5, BatchSize: 100, Steps: 150, Seed: 11,
		MinWorkers: 2, MaxWorkers: 2, Optimizer: "sgd", Momentum: 0.9,
	})
	c.startWorker()
	c.startWorker()
	j := c.waitJob("fraud", 2*time.Minute, "the end", ended)
	if j.GetStatus() != trainingv1.JobStatus_JOB_STATUS_SUCCEEDED {
		t.Fatalf("job ended %v: %s", j.GetStatus(), j.GetReason())
	}
	if j.GetLastAccuracy() <= majority {
		t.Fatalf("held-out accuracy %.4f, no better than the majority class (%.4f)", j.GetLastAccuracy(), majority)
	}
	t.Logf("accuracy %.4f against %.4f for the majority class", j.GetLastAccuracy(), majority)
}
