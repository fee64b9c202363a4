package export_test

import (
	"context"
	"encoding/binary"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/client"
	"github.com/bourse-dev/bourse/pkg/fraud"
	pb "github.com/bourse-dev/bourse/pkg/gen/inference"
	"github.com/bourse-dev/bourse/pkg/testenv"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/dataset"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/export"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/model"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/optim"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/trainer"
)

const (
	inferencePkg = "github.com/bourse-dev/bourse/services/inference/cmd/inference"
	adminKey     = "train-admin"
)

// startInference runs the real inference binary on repo in explicit mode (nothing is served until
// RepositoryModelLoad), registered in a real Consul agent.
func startInference(t *testing.T, repo string) pb.GRPCInferenceServiceClient {
	t.Helper()
	agent := testenv.StartConsul(t)
	p := testenv.StartService(t, testenv.Build(t, inferencePkg), nil,
		"--consul-addr="+agent.Addr, "--api-keys="+adminKey+"=admin:ops", "--check-interval=1s",
		"--model-repository="+repo, "--model-control=explicit", "--onnxruntime-lib="+testenv.Tool(t, "libonnxruntime.so"))
	conn, err := client.Dial(p.GRPCAddr, client.Options{APIKey: adminKey, MaxMessageBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pb.NewGRPCInferenceServiceClient(conn)
}

func rawFloats(x []float32) []byte {
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

// infer sends rows [lo, hi) of d to model name/version and returns the label and probability outputs.
func infer(t *testing.T, ctx context.Context, c pb.GRPCInferenceServiceClient, name string, version int64, d dataset.Dataset, lo, hi int) ([]int64, []float32) {
	t.Helper()
	resp, err := c.ModelInfer(ctx, &pb.ModelInferRequest{
		ModelName: name, ModelVersion: strconv.FormatInt(version, 10),
		Inputs: []*pb.ModelInferRequest_InferInputTensor{{
			Name: export.MNISTNames.Input, Datatype: "FP32", Shape: []int64{int64(hi - lo), int64(d.Dim)}}},
		RawInputContents: [][]byte{rawFloats(d.X[lo*d.Dim : hi*d.Dim])},
	})
	if err != nil {
		t.Fatalf("ModelInfer rows %d-%d: %v", lo, hi, err)
	}
	var labels []int64
	var probs []float32
	for i, out := range resp.Outputs {
		var raw []byte
		if i < len(resp.RawOutputContents) {
			raw = resp.RawOutputContents[i]
		}
		switch out.Name {
		case export.MNISTNames.Label:
			if raw == nil {
				labels = out.GetContents().GetInt64Contents()
			}
			for j := 0; j+8 <= len(raw); j += 8 {
				labels = append(labels, int64(binary.LittleEndian.Uint64(raw[j:])))
			}
		case export.MNISTNames.Output:
			if raw == nil {
				probs = out.GetContents().GetFp32Contents()
			}
			for j := 0; j+4 <= len(raw); j += 4 {
				probs = append(probs, math.Float32frombits(binary.LittleEndian.Uint32(raw[j:])))
			}
		}
	}
	if len(labels) != hi-lo || len(probs) != (hi-lo)*d.Classes {
		t.Fatalf("ModelInfer rows %d-%d: %d labels and %d probabilities", lo, hi, len(labels), len(probs))
	}
	return labels, probs
}

// TestExportedMNISTModelServesTheSamePredictions trains an MLP on an MNIST subset, exports it into a
// repository, loads it into the real inference binary with RepositoryModelLoad, and checks that
// ModelInfer over the first 2000 MNIST test images predicts exactly the classes the Go model
// predicts, with probabilities equal to float32 rounding. A second export becomes version 2 beside
// the first, and each version answers with its own parameters. Then the same for an exported fraud
// model (sigmoid head, standardization folded in) on raw payment features.
func TestExportedMNISTModelServesTheSamePredictions(t *testing.T) {
	train, test, err := dataset.Load(dataset.MNIST, dataset.Options{Limit: 6000})
	if err != nil {
		t.Fatal(err)
	}
	test = test.Slice(0, 2000)
	spec := model.Spec{Kind: model.KindMLP, Inputs: 784, Hidden: []int{64, 32}, Classes: 10}
	hyper := trainer.Hyper{Optimizer: optim.Config{Kind: optim.KindSGD, LR: 0.05, Momentum: 0.9}, BatchSize: 64, Epochs: 2}
	res, err := trainer.Train(context.Background(), spec, train, test, hyper, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accuracy < 0.85 {
		t.Fatalf("the model to export reached only %.4f", res.Accuracy)
	}
	repo := t.TempDir()
	const name = "mnist-mlp"
	net, err := export.Network(spec, res.Params, export.Softmax, export.MNISTNames, "parity test")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := export.ToRepository(repo, name, net, export.Options{}); err != nil || v != 1 {
		t.Fatalf("export: version %d, %v", v, err)
	}

	c := startInference(t, repo)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := c.RepositoryModelLoad(ctx, &pb.RepositoryModelLoadRequest{ModelName: name}); err != nil {
		t.Fatalf("RepositoryModelLoad: %v", err)
	}

	m, err := model.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]int32, test.N)
	m.Predict(res.Params, test.X, want)
	goProbs, _, err := net.Forward(test.X, test.N)
	if err != nil {
		t.Fatal(err)
	}
	const batch = 200
	mismatches := 0
	for lo := 0; lo < test.N; lo += batch {
		hi := min(lo+batch, test.N)
		labels, probs := infer(t, ctx, c, name, 1, test, lo, hi)
		for i, l := range labels {
			if l != int64(want[lo+i]) {
				mismatches++
				t.Errorf("test image %d: inference says %d, the Go model %d", lo+i, l, want[lo+i])
			}
		}
		for j, p := range probs {
			if g := goProbs[lo*test.Classes+j]; math.Abs(float64(p-g)) > 1e-4 {
				t.Fatalf("test image %d class %d: inference probability %v, Go %v", lo+j/test.Classes, j%test.Classes, p, g)
			}
		}
	}
	if mismatches > 0 {
		t.Fatalf("%d of %d predictions differ", mismatches, test.N)
	}

	// Retrain with another seed: version 2, loaded beside version 1 with the default policy
	// (latest), answers with the new parameters.
	res2, err := trainer.Train(context.Background(), spec, train, test, hyper, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	net2, err := export.Network(spec, res2.Params, export.Softmax, export.MNISTNames, "parity test, seed 2")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := export.ToRepository(repo, name, net2, export.Options{}); err != nil || v != 2 {
		t.Fatalf("second export: version %d, %v", v, err)
	}
	if _, err := c.RepositoryModelLoad(ctx, &pb.RepositoryModelLoadRequest{ModelName: name}); err != nil {
		t.Fatalf("RepositoryModelLoad of version 2: %v", err)
	}
	want2 := make([]int32, test.N)
	m.Predict(res2.Params, test.X, want2)
	labels, _ := infer(t, ctx, c, name, 2, test, 0, batch)
	differ := 0
	for i, l := range labels {
		if l != int64(want2[i]) {
			t.Fatalf("version 2, test image %d: inference says %d, the retrained model %d", i, l, want2[i])
		}
		if want2[i] != want[i] {
			differ++
		}
	}
	t.Logf("parity on %d images; version 2 disagrees with version 1 on %d of the first %d", test.N, differ, batch)

	// The fraud model through the same server: trained on standardized features, exported with a
	// sigmoid head and the standardization folded in, it scores the raw vectors payment sends as the
	// Go network does.
	ftrain, ftest, err := dataset.Load(dataset.Fraud, dataset.Options{Seed: 5, Limit: 20000})
	if err != nil {
		t.Fatal(err)
	}
	fspec := model.Spec{Kind: model.KindLogReg, Inputs: fraud.NumFeatures, Classes: 2}
	fres, err := trainer.Train(context.Background(), fspec, ftrain, ftest, trainer.Hyper{
		Optimizer: optim.Config{Kind: optim.KindAdam, LR: 0.01}, BatchSize: 256, Epochs: 2}, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	fnet, err := export.Network(fspec, fres.Params, export.Sigmoid, export.FraudNames, "parity test")
	if err != nil {
		t.Fatal(err)
	}
	if err := export.FoldStandardization(&fnet, ftrain.Mean, ftrain.Std); err != nil {
		t.Fatal(err)
	}
	if _, err := export.ToRepository(repo, fraud.ModelName, fnet, export.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RepositoryModelLoad(ctx, &pb.RepositoryModelLoadRequest{ModelName: fraud.ModelName}); err != nil {
		t.Fatalf("RepositoryModelLoad fraud: %v", err)
	}
	raw := make([]float32, 0, 200*fraud.NumFeatures)
	for i := range 200 {
		for j, v := range ftest.Row(i) {
			raw = append(raw, v*ftest.Std[j]+ftest.Mean[j])
		}
	}
	goScores, _, err := fnet.Forward(raw, 200)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.ModelInfer(ctx, &pb.ModelInferRequest{ModelName: fraud.ModelName,
		Inputs:           []*pb.ModelInferRequest_InferInputTensor{{Name: fraud.InputName, Datatype: "FP32", Shape: []int64{200, fraud.NumFeatures}}},
		RawInputContents: [][]byte{rawFloats(raw)}})
	if err != nil {
		t.Fatalf("ModelInfer fraud: %v", err)
	}
	if len(resp.RawOutputContents) != 1 || len(resp.RawOutputContents[0]) != 4*200 {
		t.Fatalf("fraud answer: %d raw outputs", len(resp.RawOutputContents))
	}
	spread := map[bool]int{}
	for i := range 200 {
		got := math.Float32frombits(binary.LittleEndian.Uint32(resp.RawOutputContents[0][4*i:]))
		if math.Abs(float64(got-goScores[i])) > 1e-5 {
			t.Fatalf("payment %d: served fraud probability %v, Go %v", i, got, goScores[i])
		}
		spread[got > 0.5]++
	}
	if spread[true] == 0 || spread[false] == 0 {
		t.Fatalf("every score on one side of 0.5 (%v): the comparison proves little", spread)
	}
}
