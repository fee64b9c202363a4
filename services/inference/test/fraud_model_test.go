package inference_test

import (
	"math"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/bourse-dev/bourse/pkg/fraud"
	pb "github.com/bourse-dev/bourse/pkg/gen/inference"
	"github.com/bourse-dev/bourse/pkg/testenv"
	"github.com/bourse-dev/bourse/services/inference/internal/testutil"
)

// The `fraud` model written by pkg/cmd/fraudmodel (as make run writes it, with a smaller dataset so
// the Go side can refit it quickly under the race detector) is served by the real inference binary,
// and its scores are the Go logistic model's; only payment and admins may query it.
func TestFraudModelServesTheGoModelsProbabilities(t *testing.T) {
	spec := fraud.Spec{Seed: 4, Samples: 6000, Fit: fraud.FitOptions{Epochs: 150, LearningRate: 2, L2: 1e-3}}
	repo := t.TempDir()
	gen := exec.Command(testenv.Build(t, "github.com/bourse-dev/bourse/pkg/cmd/fraudmodel"),
		"-out", filepath.Join(repo, fraud.ModelName), "-seed", strconv.FormatUint(spec.Seed, 10),
		"-samples", strconv.Itoa(spec.Samples), "-epochs", strconv.Itoa(spec.Fit.Epochs))
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("fraudmodel: %v\n%s", err, out)
	}
	model, err := spec.Build()
	if err != nil {
		t.Fatal(err)
	}

	agent := testenv.StartConsul(t)
	p := startInference(t, agent, repo, nil)
	testenv.WaitFor(t, 15*time.Second, "inference passing in consul", func() bool { return len(agent.Passing(t, "inference")) == 1 })
	c := ctx(t)
	mm, err := p.service.ModelMetadata(c, &pb.ModelMetadataRequest{Name: fraud.ModelName})
	if err != nil {
		t.Fatal(err)
	}
	if len(mm.GetInputs()) != 1 || mm.GetInputs()[0].GetName() != fraud.InputName || mm.GetInputs()[0].GetDatatype() != "FP32" ||
		!slices.Equal(mm.GetInputs()[0].GetShape(), []int64{-1, fraud.NumFeatures}) ||
		len(mm.GetOutputs()) != 1 || mm.GetOutputs()[0].GetName() != fraud.OutputName || !slices.Equal(mm.GetOutputs()[0].GetShape(), []int64{-1, 1}) {
		t.Fatalf("ModelMetadata(fraud) = %v", mm)
	}

	high := fraud.Features{AmountMajor: 4000, Currency: "TRY", Method: "card", DepositsLastHour: 5, DepositsLastDay: 6, AmountLastDayMajor: 9000}
	low := fraud.Features{AmountMajor: 300, Currency: "EUR", Method: "bank_transfer", AccountAgeDays: 700, DepositsLastDay: 1, AmountLastDayMajor: 250}
	payments := []fraud.Features{high, low}
	synthetic, err := fraud.Generate(99, 30)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range synthetic {
		payments = append(payments, s.Features)
	}
	var x []float32
	for _, f := range payments {
		x = append(x, f.Vector()...)
	}
	// One batched request with raw contents, and each payment alone with typed contents (as payment
	// sends them): both must give the Go model's probability.
	resp, err := p.service.ModelInfer(c, &pb.ModelInferRequest{ModelName: fraud.ModelName,
		Inputs:           []*pb.ModelInferRequest_InferInputTensor{{Name: fraud.InputName, Datatype: "FP32", Shape: []int64{int64(len(payments)), fraud.NumFeatures}}},
		RawInputContents: [][]byte{testutil.FP32Bytes(x...)}})
	if err != nil {
		t.Fatal(err)
	}
	batched := probabilities(t, resp, len(payments))
	for i, f := range payments {
		one, err := p.service.ModelInfer(c, &pb.ModelInferRequest{ModelName: fraud.ModelName,
			Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: fraud.InputName, Datatype: "FP32", Shape: []int64{1, fraud.NumFeatures},
				Contents: &pb.InferTensorContents{Fp32Contents: f.Vector()}}}})
		if err != nil {
			t.Fatal(err)
		}
		want := model.Probability(f.Vector())
		got := probabilities(t, one, 1)[0]
		if math.Abs(float64(batched[i])-want) > 1e-5 || math.Abs(float64(got)-want) > 1e-5 {
			t.Errorf("payment %d %+v: served %v (batched) and %v (alone), Go model %v", i, f, batched[i], got, want)
		}
	}
	// Only payment and admins may query it (an account could use it as an oracle).
	if _, err := p.admin.ModelInfer(c, &pb.ModelInferRequest{ModelName: fraud.ModelName,
		Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: fraud.InputName, Datatype: "FP32", Shape: []int64{1, fraud.NumFeatures},
			Contents: &pb.InferTensorContents{Fp32Contents: low.Vector()}}}}); err != nil {
		t.Errorf("admin ModelInfer(fraud): %v", err)
	}
	_, err = p.user.ModelInfer(c, &pb.ModelInferRequest{ModelName: fraud.ModelName,
		Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: fraud.InputName, Datatype: "FP32", Shape: []int64{1, fraud.NumFeatures},
			Contents: &pb.InferTensorContents{Fp32Contents: low.Vector()}}}})
	wantCode(t, "account ModelInfer(fraud)", err, codes.PermissionDenied)
	if batched[0] <= batched[1] {
		t.Errorf("high-risk payment scored %v, not above the low-risk one's %v", batched[0], batched[1])
	}
	t.Logf("high-risk %.4f, low-risk %.6f", batched[0], batched[1])
}

// probabilities reads the fraud model's FP32 [n, 1] output, raw or typed.
func probabilities(t *testing.T, r *pb.ModelInferResponse, n int) []float32 {
	t.Helper()
	if len(r.GetOutputs()) != 1 || r.GetOutputs()[0].GetName() != fraud.OutputName || r.GetOutputs()[0].GetDatatype() != "FP32" ||
		!slices.Equal(r.GetOutputs()[0].GetShape(), []int64{int64(n), 1}) {
		t.Fatalf("ModelInfer outputs %v", r.GetOutputs())
	}
	var v []float32
	if raw := r.GetRawOutputContents(); len(raw) == 1 {
		v = testutil.Float32s(raw[0])
	} else {
		v = r.GetOutputs()[0].GetContents().GetFp32Contents()
	}
	if len(v) != n {
		t.Fatalf("%d probabilities, want %d", len(v), n)
	}
	return v
}
