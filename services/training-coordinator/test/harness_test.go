package training_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/bourse-dev/bourse/pkg/client"
	trainingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/training/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

const (
	adminKey       = "train-admin"
	workerKey      = "train-worker"
	apiKeys        = adminKey + "=admin:ops," + workerKey + "=service:training-worker"
	coordinatorPkg = "github.com/bourse-dev/bourse/services/training-coordinator/cmd/training-coordinator"
	workerPkg      = "github.com/bourse-dev/bourse/services/training-coordinator/cmd/training-worker"
)

// cluster is a Consul agent, one coordinator and the workers a test starts.
type cluster struct {
	t       testing.TB
	agent   *testenv.ConsulAgent
	dataDir string
	port    int
	coord   *testenv.Process
	admin   trainingv1.TrainingCoordinatorServiceClient
	// asWorker calls the coordinator with a worker's identity (checkpoints).
	asWorker trainingv1.TrainingCoordinatorServiceClient
	workers  []*testenv.Process
	// extra are more coordinator flags.
	extra []string
}

func newCluster(t testing.TB, coordinatorFlags ...func(*cluster) []string) *cluster {
	t.Helper()
	c := &cluster{t: t, agent: testenv.StartConsul(t), dataDir: t.TempDir(), port: testenv.FreePort(t)}
	for _, f := range coordinatorFlags {
		c.extra = append(c.extra, f(c)...)
	}
	c.startCoordinator()
	c.admin = trainingv1.NewTrainingCoordinatorServiceClient(c.dial(adminKey))
	c.asWorker = trainingv1.NewTrainingCoordinatorServiceClient(c.dial(workerKey))
	return c
}

func (c *cluster) dial(key string) *grpc.ClientConn {
	conn, err := client.Dial(fmt.Sprintf("127.0.0.1:%d", c.port), client.Options{APIKey: key, MaxMessageBytes: 64 << 20})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { conn.Close() })
	return conn
}

// startCoordinator starts the coordinator on the cluster's fixed port and data directory, so a
// restart is the same service to the workers.
func (c *cluster) startCoordinator() {
	args := append([]string{"--consul-addr=" + c.agent.Addr, "--api-keys=" + apiKeys, "--check-interval=1s",
		fmt.Sprintf("--grpc-addr=127.0.0.1:%d", c.port), "--data-dir=" + filepath.Join(c.dataDir, "coordinator"),
		"--heartbeat-interval=250ms"}, c.extra...)
	c.coord = testenv.StartService(c.t, testenv.Build(c.t, coordinatorPkg), nil, args...)
}

// startWorker starts one worker process on a port of its own, advertised explicitly.
func (c *cluster) startWorker(extra ...string) *testenv.Process {
	c.t.Helper()
	port := testenv.FreePort(c.t)
	args := append([]string{"--consul-addr=" + c.agent.Addr, "--api-keys=" + apiKeys, "--api-key=" + workerKey, "--check-interval=1s",
		fmt.Sprintf("--grpc-addr=127.0.0.1:%d", port), "--advertise-host=127.0.0.1",
		fmt.Sprintf("--coordinator=127.0.0.1:%d", c.port), fmt.Sprintf("--worker-id=w%d", len(c.workers)+1)}, extra...)
	w := testenv.StartService(c.t, workerBinary(c.t), nil, args...)
	c.workers = append(c.workers, w)
	return w
}

// workerBinary is the worker built from this tree, or BOURSE_TRAINING_WORKER_BIN (a build of
// another commit, to compare two in one benchmark run).
func workerBinary(t testing.TB) string {
	if bin := os.Getenv("BOURSE_TRAINING_WORKER_BIN"); bin != "" {
		return bin
	}
	return testenv.Build(t, workerPkg)
}

func (c *cluster) start(id string, spec *trainingv1.JobSpec) *trainingv1.Job {
	c.t.Helper()
	resp, err := c.admin.StartJob(context.Background(), &trainingv1.StartJobRequest{JobId: id, Spec: spec})
	if err != nil {
		c.t.Fatalf("StartJob: %v", err)
	}
	return resp.GetJob()
}

func (c *cluster) job(id string) *trainingv1.Job {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.admin.GetJob(ctx, &trainingv1.GetJobRequest{JobId: id})
	if err != nil {
		return nil
	}
	return resp.GetJob()
}

// waitJob polls the job until cond holds, failing the test after timeout with the job's state.
func (c *cluster) waitJob(id string, timeout time.Duration, what string, cond func(*trainingv1.Job) bool) *trainingv1.Job {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		j := c.job(id)
		if j != nil && cond(j) {
			return j
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("job %s: timed out after %v waiting for %s; last: %v", id, timeout, what, j)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ended(j *trainingv1.Job) bool {
	switch j.GetStatus() {
	case trainingv1.JobStatus_JOB_STATUS_SUCCEEDED, trainingv1.JobStatus_JOB_STATUS_FAILED, trainingv1.JobStatus_JOB_STATUS_STOPPED:
		return true
	}
	return false
}

// progress collects a job's events in the background until the job ends.
func (c *cluster) progress(id string) <-chan []*trainingv1.StreamJobProgressResponse {
	out := make(chan []*trainingv1.StreamJobProgressResponse, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	stream, err := c.admin.StreamJobProgress(ctx, &trainingv1.StreamJobProgressRequest{JobId: id})
	if err != nil {
		cancel()
		c.t.Fatal(err)
	}
	go func() {
		defer cancel()
		var evs []*trainingv1.StreamJobProgressResponse
		for {
			e, err := stream.Recv()
			if err != nil {
				out <- evs
				return
			}
			evs = append(evs, e)
		}
	}()
	return out
}

func kill(p *testenv.Process) {
	p.Signal(syscall.SIGKILL)
	p.WaitExit(10 * time.Second)
}

// mnistSpec is a short MNIST run: a small MLP on a subset, fast enough for go test on two cores.
func mnistSpec(steps uint64, minW, maxW uint32) *trainingv1.JobSpec {
	return &trainingv1.JobSpec{
		Dataset: "mnist", Model: &trainingv1.ModelSpec{Kind: trainingv1.ModelKind_MODEL_KIND_MLP, Hidden: []uint32{32}},
		TrainLimit: 3000, TestLimit: 1000, LearningRate: 0.1, Momentum: 0.9, BatchSize: 60, Steps: steps, Seed: 7,
		MinWorkers: minW, MaxWorkers: maxW, CheckpointInterval: 20, EvalInterval: 50,
		WaitTimeoutMs: 20_000, HeartbeatTimeoutMs: 1500, CollectiveTimeoutMs: 3000,
	}
}
