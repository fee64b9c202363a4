package training_test

import (
	"testing"
	"time"

	trainingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/training/v1"
)

// Two workers train a job to the end; its progress stream shows the generation, every step, the
// evaluations and the final status.
func TestTwoWorkersTrainToTheEnd(t *testing.T) {
	c := newCluster(t)
	spec := mnistSpec(100, 2, 2)
	spec.TargetAccuracy = 0.8
	spec.EvalInterval = 100
	c.start("smoke", spec)
	evs := c.progress("smoke")
	c.startWorker()
	// This one is for the job only, and stops (exit 0, deregistered) once it has ended.
	once := c.startWorker("--job=smoke", "--exit-when-done")
	j := c.waitJob("smoke", 2*time.Minute, "the end", ended)
	if j.GetStatus() != trainingv1.JobStatus_JOB_STATUS_SUCCEEDED {
		t.Fatalf("job ended %v: %s", j.GetStatus(), j.GetReason())
	}
	t.Logf("job: step %d accuracy %.4f loss %.4f: %s", j.GetStep(), j.GetLastAccuracy(), j.GetLastLoss(), j.GetReason())
	steps := 0
	for _, e := range <-evs {
		if s := e.GetStep(); s != nil {
			steps++
			if s.GetStep()%25 == 0 {
				t.Logf("step %d loss %.4f %.0f samples/s allreduce %d bytes (optimum %d) %.2fms", s.GetStep(), s.GetLoss(),
					s.GetSamplesPerSecond(), s.GetAllreduceBytes(), s.GetAllreduceOptimumBytes(), 1000*s.GetAllreduceSeconds())
			}
		}
	}
	if steps != 100 {
		t.Fatalf("%d step events, want 100", steps)
	}
	if !once.WaitExit(30 * time.Second) {
		t.Fatal("the --exit-when-done worker still runs after its job ended")
	}
	if err := once.ExitErr(); err != nil || !once.LogContains("deregistered from consul") {
		t.Fatalf("the --exit-when-done worker exited with %v:\n%s", err, once.Log())
	}
}
