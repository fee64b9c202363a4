package worker

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	trainingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/training/v1"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/allreduce/grpcring"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/checkpoint"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/coordinator"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/dataset"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/grpcapi"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/optim"
)

// coordinatorOnLoopback serves a real Coordinator (SQLite in a temporary directory) over gRPC.
func coordinatorOnLoopback(t *testing.T) trainingv1.TrainingCoordinatorServiceClient {
	t.Helper()
	dir := t.TempDir()
	st, err := coordinator.OpenStore(context.Background(), filepath.Join(dir, "jobs.db"))
	if err != nil {
		t.Fatal(err)
	}
	info := func(name string, limit int, seed int64) (int, int, int, error) {
		train, _, err := loadDataset(name, dataset.Options{Limit: limit, Seed: seed})
		return train.N, train.Dim, train.Classes, err
	}
	c, err := coordinator.New(context.Background(), coordinator.Config{Store: st, Checkpoints: checkpoint.Store{Dir: dir}, DataInfo: info})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	trainingv1.RegisterTrainingCoordinatorServiceServer(srv, grpcapi.New(c, make(chan struct{})))
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); srv.Stop(); c.Close(); st.Close() })
	return trainingv1.NewTrainingCoordinatorServiceClient(conn)
}

// A rank 0 that applied the last step and died before committing it leaves the survivors holding
// the final state: the generation they form starts at the last step, and its rank 0 finishes the
// job (evaluation, final checkpoint, commit) instead of forming generation after generation.
func TestGenerationStartingAtTheLastStepFinishesTheJob(t *testing.T) {
	coord := coordinatorOnLoopback(t)
	ctx := context.Background()
	spec := testJob().GetSpec()
	spec.Steps, spec.MinWorkers, spec.MaxWorkers = 6, 1, 1
	if _, err := coord.StartJob(ctx, &trainingv1.StartJobRequest{JobId: "t", Spec: spec}); err != nil {
		t.Fatal(err)
	}
	a, err := coord.Join(ctx, &trainingv1.JoinRequest{JobId: "t", WorkerId: "w", Address: "127.0.0.1:1", StateJobId: "t", StateStep: 6, WaitTimeMs: 5000})
	if err != nil || !a.GetAssigned() || a.GetStartStep() != 6 || a.GetSource() != trainingv1.StateSource_STATE_SOURCE_OWN {
		t.Fatalf("join holding the last step: %v %v", a, err)
	}
	hub := grpcring.NewHub(func(string) (*grpc.ClientConn, error) {
		t.Error("a world of one dialled a peer")
		return nil, net.ErrClosed
	}, slog.Default())
	defer hub.Close()
	w := New(Config{ID: "w", Address: "127.0.0.1:1", Coordinator: coord, Log: slog.Default()}, hub)
	jc, err := newJobCtx(a.GetJob(), "")
	if err != nil {
		t.Fatal(err)
	}
	w.jc, w.stateJob, w.stateStep = jc, "t", 6
	w.params = make([]float32, jc.m.NumParams())
	jc.m.Init(w.params, 3)
	if w.opt, err = optim.New(jc.optCfg, jc.m.NumParams()); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.generation(ctx, a) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the generation did not end")
	}
	j, err := coord.GetJob(ctx, &trainingv1.GetJobRequest{JobId: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if j.GetJob().GetStatus() != trainingv1.JobStatus_JOB_STATUS_SUCCEEDED || j.GetJob().GetCheckpointStep() != 6 {
		t.Fatalf("job %v with its checkpoint at step %d, want succeeded at 6", j.GetJob().GetStatus(), j.GetJob().GetCheckpointStep())
	}
}
