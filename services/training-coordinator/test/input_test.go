package training_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	trainingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/training/v1"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/allreduce/grpcring"
)

// StartJob refuses bad specs with InvalidArgument naming the field, and creates nothing.
func TestStartJobRefusesBadSpecs(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	cases := []struct {
		field  string
		mutate func(*trainingv1.JobSpec)
	}{
		{"spec.dataset", func(s *trainingv1.JobSpec) { s.Dataset = "cifar" }},
		{"spec.dataset", func(s *trainingv1.JobSpec) { s.Dataset = "" }},
		{"spec.model.kind", func(s *trainingv1.JobSpec) { s.Model.Kind = trainingv1.ModelKind_MODEL_KIND_UNSPECIFIED }},
		{"spec.model.kind", func(s *trainingv1.JobSpec) { s.Model.Kind = 42 }},
		{"spec.model.hidden", func(s *trainingv1.JobSpec) { s.Model.Hidden = nil }},
		{"spec.min_workers", func(s *trainingv1.JobSpec) { s.MinWorkers = 0 }},
		{"spec.max_workers", func(s *trainingv1.JobSpec) { s.MaxWorkers = 0 }},
		{"spec.min_workers", func(s *trainingv1.JobSpec) { s.MinWorkers, s.MaxWorkers = 3, 2 }},
		{"spec.learning_rate", func(s *trainingv1.JobSpec) { s.LearningRate = 0 }},
		{"spec.learning_rate", func(s *trainingv1.JobSpec) { s.LearningRate = -0.1 }},
		{"spec.learning_rate", func(s *trainingv1.JobSpec) { s.LearningRate = float32(math.NaN()) }},
		{"spec.batch_size", func(s *trainingv1.JobSpec) { s.BatchSize = 0 }},
		{"spec.batch_size", func(s *trainingv1.JobSpec) { s.BatchSize = 3001 }},
		{"spec.steps", func(s *trainingv1.JobSpec) { s.Steps, s.Epochs = 0, 0 }},
		{"spec.target_accuracy", func(s *trainingv1.JobSpec) { s.TargetAccuracy = 1.5 }},
		{"spec.optimizer", func(s *trainingv1.JobSpec) { s.Optimizer = "lbfgs" }},
	}
	for i, tc := range cases {
		spec := proto.Clone(mnistSpec(10, 1, 2)).(*trainingv1.JobSpec)
		tc.mutate(spec)
		_, err := c.admin.StartJob(ctx, &trainingv1.StartJobRequest{JobId: "bad", Spec: spec})
		if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), tc.field+":") {
			t.Errorf("case %d: %v, want InvalidArgument naming %s", i, err, tc.field)
		}
	}
	if _, err := c.admin.StartJob(ctx, &trainingv1.StartJobRequest{JobId: "no/slash", Spec: mnistSpec(10, 1, 1)}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("bad job id: %v", err)
	}
	if _, err := c.admin.GetJob(ctx, &trainingv1.GetJobRequest{JobId: "bad"}); status.Code(err) != codes.NotFound {
		t.Fatalf("a refused StartJob created the job: %v", err)
	}
	// The same id with the same spec answers the job; with another spec it is AlreadyExists.
	first, err := c.admin.StartJob(ctx, &trainingv1.StartJobRequest{JobId: "once", Spec: mnistSpec(10, 1, 1)})
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.admin.StartJob(ctx, &trainingv1.StartJobRequest{JobId: "once", Spec: mnistSpec(10, 1, 1)})
	if err != nil || !again.GetDuplicate() || again.GetJob().GetCreatedAt().AsTime() != first.GetJob().GetCreatedAt().AsTime() {
		t.Fatalf("repeated StartJob: %v %v", again, err)
	}
	if _, err := c.admin.StartJob(ctx, &trainingv1.StartJobRequest{JobId: "once", Spec: mnistSpec(11, 1, 1)}); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("same id, other spec: %v", err)
	}
	// Starting jobs is for operators: a worker key may not.
	if _, err := c.asWorker.StartJob(ctx, &trainingv1.StartJobRequest{JobId: "w", Spec: mnistSpec(10, 1, 1)}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("a worker key started a job: %v", err)
	}
}

// Checkpoint uploads of the wrong shape, with NaN/Inf, or from a stale generation are refused and
// leave the job's checkpoint alone; a Join for an unknown job is NotFound.
func TestUploadCheckpointRefusesBadState(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	j := c.start("uploads", mnistSpec(10, 1, 1))
	n := 784*32 + 32 + 32*10 + 10
	good := make([]float32, n)
	nan := make([]float32, n)
	nan[5] = float32(math.NaN())
	inf := make([]float32, n)
	inf[n-1] = float32(math.Inf(-1))
	for _, tc := range []struct {
		name   string
		gen    uint64
		params []float32
		code   codes.Code
	}{
		{"wrong shape", j.GetGeneration(), good[:n-1], codes.InvalidArgument},
		{"NaN", j.GetGeneration(), nan, codes.InvalidArgument},
		{"-Inf", j.GetGeneration(), inf, codes.InvalidArgument},
		{"stale generation", j.GetGeneration() + 1, good, codes.FailedPrecondition},
	} {
		_, err := c.asWorker.UploadCheckpoint(ctx, &trainingv1.UploadCheckpointRequest{
			JobId: "uploads", Generation: tc.gen, Step: 5, Params: grpcring.EncodeFloats(nil, tc.params),
		})
		if status.Code(err) != tc.code {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.code)
		}
	}
	if got := c.job("uploads"); got.GetCheckpointStep() != 0 {
		t.Fatalf("a refused upload left a checkpoint at step %d", got.GetCheckpointStep())
	}
	if _, err := c.asWorker.GetCheckpoint(ctx, &trainingv1.GetCheckpointRequest{JobId: "uploads"}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("GetCheckpoint without one: %v", err)
	}
	_, err := c.asWorker.Join(ctx, &trainingv1.JoinRequest{JobId: "nope", WorkerId: "x", Address: "127.0.0.1:1"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("Join of an unknown job: %v", err)
	}
}
