package training_test

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	trainingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/training/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// perWorkerBatch is each worker's share of a step: the global batch grows with the workers (weak
// scaling, as Horovod reports it), so the efficiency against one worker is
// samples/s(N) / (N × samples/s(1)).
const perWorkerBatch = 128

// scalingSpec is the MNIST MLP 784-128-10 (101,770 parameters), evaluated never, with a global
// batch of perWorkerBatch per worker.
func scalingSpec(world int, steps uint64) *trainingv1.JobSpec {
	return &trainingv1.JobSpec{
		Dataset: "mnist", Model: &trainingv1.ModelSpec{Kind: trainingv1.ModelKind_MODEL_KIND_MLP, Hidden: []uint32{128}},
		TrainLimit: 10_000, TestLimit: 100, LearningRate: 0.05, BatchSize: uint32(perWorkerBatch * world), Seed: 1,
		MinWorkers: uint32(world), MaxWorkers: uint32(world), EvalInterval: 1 << 30, Steps: steps,
		WaitTimeoutMs: 60_000, HeartbeatTimeoutMs: 5000, CollectiveTimeoutMs: 10_000,
	}
}

// minSteps is the shortest timed job: a benchmark whose first round (b.N = 1) already passes
// -benchtime stops there, and one step has no rate.
const minSteps = 30

// benchJob runs a five-step warm-up job (workers load the data and open their connections), then
// a job of max(b.N, minSteps) steps, and returns the figures of the timed job's step events.
func benchJob(b *testing.B, c *cluster, name string, world int) stepFigures {
	b.Helper()
	warm := name + "-warm-" + fmt.Sprint(b.N)
	c.start(warm, scalingSpec(world, 5))
	if j := c.waitJob(warm, 2*time.Minute, "the warm-up", ended); j.GetStatus() != trainingv1.JobStatus_JOB_STATUS_SUCCEEDED {
		b.Fatalf("warm-up ended %v: %s", j.GetStatus(), j.GetReason())
	}
	id := name + "-" + fmt.Sprint(b.N)
	b.ResetTimer()
	c.start(id, scalingSpec(world, uint64(max(b.N, minSteps))))
	evs := c.progress(id)
	j := c.waitJob(id, 10*time.Minute, "the end", ended)
	b.StopTimer()
	if j.GetStatus() != trainingv1.JobStatus_JOB_STATUS_SUCCEEDED {
		b.Fatalf("job ended %v: %s", j.GetStatus(), j.GetReason())
	}
	return figures(<-evs)
}

// report puts the figures on the benchmark line. base holds one worker's samples/s for the
// efficiency of the larger worlds (0 when workers=1 did not run in this process).
func report(b *testing.B, f stepFigures, world int, base float64) {
	samples := f.StepsPerSecond * float64(perWorkerBatch*world)
	if f.StepsPerSecond > 0 {
		// The step's wall time in steady state, rather than the timed job's over b.N.
		b.ReportMetric(1e9/f.StepsPerSecond, "ns/op")
	}
	b.ReportMetric(f.StepsPerSecond, "steps/s")
	b.ReportMetric(samples, "samples/s")
	if base > 0 {
		b.ReportMetric(samples/(float64(world)*base), "efficiency")
	}
	b.ReportMetric(f.BytesPerStep, "bytes/worker/step")
	b.ReportMetric(f.OptimumPerStep, "optimum-bytes/step")
	if world > 1 {
		b.ReportMetric(f.ratio(), "x-optimum")
	}
	b.ReportMetric(1000*f.AllreduceMean, "allreduce-ms/step")
}

// BenchmarkTrainingScaling is the training table of `make bench`: an MNIST job with 1, 2 and 4
// real worker processes on loopback (Consul, the coordinator, every step committed there):
// steps/s and samples/s between the first and last step, weak-scaling efficiency against one
// worker, rank 0's bytes per step against the ring optimum 2(N−1)/N × |θ| × 4, and its allreduce
// time per step. ns/op is the wall time of a step between the first and the last.
func BenchmarkTrainingScaling(b *testing.B) {
	c := newCluster(b)
	var mu sync.Mutex
	base := 0.0
	for _, world := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("workers=%d", world), func(sub *testing.B) {
			// The cluster's calls fail the benchmark that makes them, and its processes stop with it.
			c.t = sub
			defer func() { c.t = b }()
			b := sub
			first := len(c.workers)
			for range world {
				c.startWorker()
			}
			defer func() { stopAll(b, c.workers[first:]) }()
			f := benchJob(b, c, fmt.Sprintf("scaling-%d", world), world)
			mu.Lock()
			defer mu.Unlock()
			if world == 1 {
				base = f.StepsPerSecond * perWorkerBatch
			}
			report(b, f, world, base)
		})
	}
}

// BenchmarkTrainingAcrossHosts is the same job with 2 and 4 workers each in a network namespace
// of its own (root only): over the bridge, then through a relay in each namespace with 0, 1 and 5 ms
// of one-way latency into every host (the relay is what stands in for netem on kernels without
// it; its 0 ms run is what the relay itself costs).
func BenchmarkTrainingAcrossHosts(b *testing.B) {
	nw := testenv.NewNetwork(b, 4)
	hc := newHostCluster(b, nw)
	for _, world := range []int{2, 4} {
		for _, path := range []struct {
			name  string
			relay bool
			delay time.Duration
		}{{"bridge", false, 0}, {"relay-0ms", true, 0}, {"relay-1ms", true, time.Millisecond}, {"relay-5ms", true, 5 * time.Millisecond}} {
			b.Run(fmt.Sprintf("workers=%d/path=%s", world, path.name), func(sub *testing.B) {
				hc.t = sub
				defer func() { hc.t = b }()
				b := sub
				for i, h := range nw.Hosts[:world] {
					port := testenv.FreePort(b)
					id := fmt.Sprintf("%s-%d-%d-w%d", path.name, world, b.N, i+1)
					if !path.relay {
						hc.startWorkerOn(h, id, h.Addr, port)
						continue
					}
					startRelay(b, h, net.JoinHostPort(h.Addr, fmt.Sprint(port)), net.JoinHostPort("127.0.0.1", fmt.Sprint(port)), path.delay)
					hc.startWorkerOn(h, id, "127.0.0.1", port)
				}
				defer hc.stopWorkers()
				f := benchJob(b, hc.cluster, fmt.Sprintf("hosts-%s-%d", path.name, world), world)
				report(b, f, world, 0)
			})
		}
	}
}
