package training_test

import (
	"context"
	"encoding/binary"
	"math"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bourse-dev/bourse/pkg/client"
	trainingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/training/v1"
	pb "github.com/bourse-dev/bourse/pkg/gen/inference"
	"github.com/bourse-dev/bourse/pkg/testenv"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/allreduce/grpcring"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/dataset"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/model"
)

const (
	inferencePkg = "github.com/bourse-dev/bourse/services/inference/cmd/inference"
	// trainingKey is the coordinator's identity at inference: it may load models, nothing more.
	trainingKey = "train-inference"
)

// A job started with export_model ends with its final model written into inference's repository
// as a new version and loaded there (the real inference binary, explicit model control: nothing is
// served until RepositoryModelLoad); inference's predictions over MNIST test images equal the Go
// model's on the job's final parameters.
func TestSucceededJobIsExportedToInference(t *testing.T) {
	repo := t.TempDir()
	var inf *testenv.Process
	c := newCluster(t, func(c *cluster) []string {
		inf = testenv.StartService(t, testenv.Build(t, inferencePkg), nil,
			"--consul-addr="+c.agent.Addr, "--api-keys="+adminKey+"=admin:ops,"+trainingKey+"=service:training", "--check-interval=1s",
			"--model-repository="+repo, "--model-control=explicit", "--onnxruntime-lib="+testenv.Tool(t, "libonnxruntime.so"))
		return []string{"--model-repository=" + repo, "--inference=" + inf.GRPCAddr, "--inference-api-key=" + trainingKey}
	})
	spec := mnistSpec(60, 1, 1)
	spec.ExportModel = "digits"
	c.start("export", spec)
	evs := c.progress("export")
	c.startWorker()
	j := c.waitJob("export", 2*time.Minute, "the export", func(j *trainingv1.Job) bool {
		return j.GetExportedVersion() > 0 || j.GetExportError() != "" || (ended(j) && j.GetStatus() != trainingv1.JobStatus_JOB_STATUS_SUCCEEDED)
	})
	if j.GetExportedVersion() != 1 || j.GetExportedModel() != "digits" {
		t.Fatalf("job %v %q: exported %q version %d, error %q", j.GetStatus(), j.GetReason(), j.GetExportedModel(), j.GetExportedVersion(), j.GetExportError())
	}
	var exported *trainingv1.StatusEvent
	for _, e := range <-evs {
		if s := e.GetStatus(); s != nil && s.GetExportedVersion() > 0 {
			exported = s
		}
	}
	if exported == nil || exported.GetExportedModel() != "digits" {
		t.Fatal("the progress stream ended without reporting the export")
	}

	ck, err := c.asWorker.GetCheckpoint(context.Background(), &trainingv1.GetCheckpointRequest{JobId: "export"})
	if err != nil {
		t.Fatal(err)
	}
	params, err := grpcring.DecodeFloats(ck.GetParams())
	if err != nil {
		t.Fatal(err)
	}
	_, test, err := dataset.Load(dataset.MNIST, dataset.Options{Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.New(model.Spec{Kind: model.KindMLP, Inputs: test.Dim, Hidden: []int{32}, Classes: test.Classes})
	if err != nil {
		t.Fatal(err)
	}
	want := make([]int32, test.N)
	m.Predict(params, test.X, want)

	conn, err := client.Dial(inf.GRPCAddr, client.Options{APIKey: adminKey, MaxMessageBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw := make([]byte, 4*len(test.X))
	for i, v := range test.X {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	resp, err := pb.NewGRPCInferenceServiceClient(conn).ModelInfer(context.Background(), &pb.ModelInferRequest{
		ModelName: "digits", ModelVersion: "1",
		Inputs:           []*pb.ModelInferRequest_InferInputTensor{{Name: "pixels", Datatype: "FP32", Shape: []int64{int64(test.N), int64(test.Dim)}}},
		Outputs:          []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "label"}},
		RawInputContents: [][]byte{raw},
	})
	if err != nil {
		t.Fatalf("ModelInfer of the exported model: %v", err)
	}
	got := resp.GetRawOutputContents()[0]
	if len(got) != 8*test.N {
		t.Fatalf("%d label bytes for %d images", len(got), test.N)
	}
	for i := range test.N {
		if l := int32(binary.LittleEndian.Uint64(got[8*i:])); l != want[i] {
			t.Fatalf("test image %d: inference says %d, the Go model %d", i, l, want[i])
		}
	}
	t.Logf("exported as digits version 1 (%s); inference agrees with the Go model on %d test images", filepath.Base(exported.GetModelPath()), test.N)
}

// A coordinator without a model repository refuses a job asking for an export, before it exists.
func TestExportNeedsARepository(t *testing.T) {
	c := newCluster(t)
	spec := mnistSpec(10, 1, 1)
	spec.ExportModel = "digits"
	_, err := c.admin.StartJob(context.Background(), &trainingv1.StartJobRequest{JobId: "x", Spec: spec})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("StartJob: %v, want FailedPrecondition", err)
	}
	spec.ExportModel = "../etc"
	if _, err := c.admin.StartJob(context.Background(), &trainingv1.StartJobRequest{JobId: "x", Spec: spec}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad model name: %v, want InvalidArgument", err)
	}
}
