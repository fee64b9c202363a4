package training_test

import (
	"fmt"
	"testing"
	"time"

	trainingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/training/v1"
)

// BenchmarkTrainingJob runs b.N steps of an MNIST job (MLP 784-128-10, global batch 128) end to end
// with real processes: Consul, the coordinator and N workers, each step committed at the
// coordinator. ns/op is the wall time of a step; the job's start (rendezvous, dataset load) is
// outside the timer only for the workers' start-up, so compare with the in-process
// BenchmarkDataParallelStep to see what the processes and the per-step commit cost.
func BenchmarkTrainingJob(b *testing.B) {
	for _, world := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("workers=%d", world), func(b *testing.B) {
			c := newCluster(b)
			for range world {
				c.startWorker()
			}
			spec := &trainingv1.JobSpec{
				Dataset: "mnist", Model: &trainingv1.ModelSpec{Kind: trainingv1.ModelKind_MODEL_KIND_MLP, Hidden: []uint32{128}},
				TrainLimit: 10_000, TestLimit: 100, LearningRate: 0.05, BatchSize: 128, Seed: 1,
				MinWorkers: uint32(world), MaxWorkers: uint32(world), EvalInterval: 1 << 30,
			}
			// A first job warms the workers up (dataset loaded, connections open).
			spec.Steps = 5
			c.start(fmt.Sprintf("warm-%d", world), spec)
			c.waitJob(fmt.Sprintf("warm-%d", world), 2*time.Minute, "the warm-up", ended)
			spec.Steps = uint64(b.N)
			id := fmt.Sprintf("bench-%d-%d", world, b.N)
			b.ResetTimer()
			c.start(id, spec)
			j := c.waitJob(id, 10*time.Minute, "the end", ended)
			b.StopTimer()
			if j.GetStatus() != trainingv1.JobStatus_JOB_STATUS_SUCCEEDED {
				b.Fatalf("job ended %v: %s", j.GetStatus(), j.GetReason())
			}
			secs := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N)/secs, "steps/s")
			b.ReportMetric(float64(b.N*128)/secs, "samples/s")
		})
	}
}
