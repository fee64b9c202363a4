package training_test

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	trainingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/training/v1"
)

// A job whose workers all die after a checkpoint, failed below min and then resumed from that
// checkpoint by fresh workers, ends with exactly the parameters of an uninterrupted run of the same
// spec: the data order, the reduction order and the optimizer state all carry over. Before the
// resume, a corrupted checkpoint is refused with FailedPrecondition and changes nothing.
func TestCheckpointResumeEquivalence(t *testing.T) {
	c := newCluster(t)
	spec := mnistSpec(300, 2, 2)
	spec.WaitTimeoutMs = 2000
	ctx := context.Background()

	c.start("whole", spec)
	c.startWorker()
	c.startWorker()
	whole := c.waitJob("whole", 2*time.Minute, "the end", ended)
	if whole.GetStatus() != trainingv1.JobStatus_JOB_STATUS_SUCCEEDED {
		t.Fatalf("uninterrupted job ended %v: %s", whole.GetStatus(), whole.GetReason())
	}

	c.start("crashed", spec)
	mid := c.waitJob("crashed", time.Minute, "a checkpoint and a few steps more", func(j *trainingv1.Job) bool {
		return j.GetCheckpointStep() >= 20 && j.GetStep() >= j.GetCheckpointStep()+5
	})
	for _, w := range c.workers {
		kill(w)
	}
	failed := c.waitJob("crashed", 30*time.Second, "the end", ended)
	if failed.GetStatus() != trainingv1.JobStatus_JOB_STATUS_FAILED {
		t.Fatalf("job without workers ended %v: %s", failed.GetStatus(), failed.GetReason())
	}
	t.Logf("killed every worker at step %d; checkpoint at step %d; %s", mid.GetStep(), failed.GetCheckpointStep(), failed.GetReason())

	path := failed.GetCheckpointPath()
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(good)
	bad[len(bad)/2] ^= 1
	if err := os.WriteFile(path, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = c.admin.ResumeJob(ctx, &trainingv1.ResumeJobRequest{JobId: "crashed"})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("resume from a corrupted checkpoint: %v, want FailedPrecondition", err)
	}
	if j := c.job("crashed"); j.GetStatus() != trainingv1.JobStatus_JOB_STATUS_FAILED {
		t.Fatalf("a refused resume changed the job to %v", j.GetStatus())
	}
	if err := os.WriteFile(path, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.admin.ResumeJob(ctx, &trainingv1.ResumeJobRequest{JobId: "crashed"}); err != nil {
		t.Fatal(err)
	}
	evs := c.progress("crashed")
	c.startWorker()
	c.startWorker()
	resumed := c.waitJob("crashed", 2*time.Minute, "the end", ended)
	var last *trainingv1.MembershipEvent
	for _, e := range <-evs {
		if m := e.GetMembership(); m != nil {
			last = m
		}
	}
	// Fresh workers hold no state: the generation after the resume starts at the checkpoint, not
	// from scratch (which, being deterministic, would also end with the same parameters).
	if last == nil || last.GetStep() != failed.GetCheckpointStep() {
		t.Fatalf("generation after the resume: %v, want it to start at the checkpoint's step %d", last, failed.GetCheckpointStep())
	}
	if resumed.GetStatus() != trainingv1.JobStatus_JOB_STATUS_SUCCEEDED {
		t.Fatalf("resumed job ended %v: %s", resumed.GetStatus(), resumed.GetReason())
	}

	a, err := c.asWorker.GetCheckpoint(ctx, &trainingv1.GetCheckpointRequest{JobId: "whole"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.asWorker.GetCheckpoint(ctx, &trainingv1.GetCheckpointRequest{JobId: "crashed"})
	if err != nil {
		t.Fatal(err)
	}
	if a.GetStep() != 300 || b.GetStep() != 300 {
		t.Fatalf("final checkpoints at steps %d and %d, want 300", a.GetStep(), b.GetStep())
	}
	if !bytes.Equal(a.GetParams(), b.GetParams()) || !bytes.Equal(a.GetOptimizerState(), b.GetOptimizerState()) {
		t.Fatal("the resumed job's final parameters differ from the uninterrupted run's")
	}
	if whole.GetLastAccuracy() != resumed.GetLastAccuracy() {
		t.Fatalf("accuracy %v uninterrupted, %v resumed", whole.GetLastAccuracy(), resumed.GetLastAccuracy())
	}
	t.Logf("both end with the same %d parameter bytes, accuracy %.4f", len(a.GetParams()), whole.GetLastAccuracy())
}
