package export

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/model"
)

func trainedLike(t *testing.T, spec model.Spec, seed int64) (model.Model, []float32) {
	t.Helper()
	m, err := model.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	p := make([]float32, m.NumParams())
	m.Init(p, seed)
	r := rand.New(rand.NewPCG(uint64(seed), 9))
	for i := range p {
		p[i] += float32(0.05 * r.NormFloat64()) // biases away from zero
	}
	return m, p
}

func randRows(n, dim int) []float32 {
	r := rand.New(rand.NewPCG(3, 4))
	x := make([]float32, n*dim)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

// TestNetworkComputesTheModel: the exported network's Go forward pass (pkg/onnx's reference of what
// onnxruntime computes) predicts what the model predicts, for an MLP with a softmax head.
func TestNetworkComputesTheModel(t *testing.T) {
	spec := model.Spec{Kind: model.KindMLP, Inputs: 20, Hidden: []int{16, 8}, Classes: 5}
	m, p := trainedLike(t, spec, 1)
	net, err := Network(spec, p, Softmax, Names{Input: "x", Output: "probs", Label: "label"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	x := randRows(n, spec.Inputs)
	probs, labels, err := net.Forward(x, n)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]int32, n)
	m.Predict(p, x, want)
	distinct := map[int32]bool{}
	for i := range n {
		if int32(labels[i]) != want[i] {
			t.Fatalf("row %d: exported net says %d, model %d (probs %v)", i, labels[i], want[i], probs[i*5:i*5+5])
		}
		distinct[want[i]] = true
	}
	if len(distinct) < 3 {
		t.Fatalf("only classes %v predicted: the comparison proves little", distinct)
	}
}

// TestSigmoidHeadIsClassOneProbability: folding a two-class logreg into one logit gives σ(z₁−z₀),
// the softmax probability of class 1, for every row.
func TestSigmoidHeadIsClassOneProbability(t *testing.T) {
	spec := model.Spec{Kind: model.KindLogReg, Inputs: 8, Classes: 2}
	_, p := trainedLike(t, spec, 2)
	soft, err := Network(spec, p, Softmax, Names{Input: "x", Output: "p"}, "")
	if err != nil {
		t.Fatal(err)
	}
	sig, err := Network(spec, p, Sigmoid, Names{Input: "features", Output: "probability"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if sig.Classes() != 1 {
		t.Fatalf("sigmoid net has %d outputs", sig.Classes())
	}
	const n = 100
	x := randRows(n, spec.Inputs)
	sp, _, err := soft.Forward(x, n)
	if err != nil {
		t.Fatal(err)
	}
	pp, _, err := sig.Forward(x, n)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if math.Abs(float64(sp[2*i+1]-pp[i])) > 1e-6 {
			t.Fatalf("row %d: softmax p1 %v, sigmoid %v", i, sp[2*i+1], pp[i])
		}
	}
	if _, err := Network(model.Spec{Kind: model.KindLogReg, Inputs: 8, Classes: 3}, make([]float32, 27), Sigmoid, Names{Input: "x", Output: "p"}, ""); errs.KindOf(err) != errs.KindInvalidArgument {
		t.Fatalf("sigmoid head on 3 classes: %v", err)
	}
}

func TestNetworkRejects(t *testing.T) {
	spec := model.Spec{Kind: model.KindLogReg, Inputs: 3, Classes: 2}
	names := Names{Input: "x", Output: "p"}
	if _, err := Network(spec, make([]float32, 7), Softmax, names, ""); errs.KindOf(err) != errs.KindInvalidArgument || !strings.HasPrefix(err.Error(), "params:") {
		t.Errorf("short params: %v", err)
	}
	bad := make([]float32, 8)
	bad[5] = float32(math.NaN())
	if _, err := Network(spec, bad, Softmax, names, ""); errs.KindOf(err) != errs.KindInvalidArgument || !strings.Contains(err.Error(), "value 5") {
		t.Errorf("NaN param: %v", err)
	}
	if _, err := Network(spec, make([]float32, 8), Softmax, Names{Input: "x"}, ""); errs.KindOf(err) != errs.KindInvalidArgument {
		t.Errorf("no output name: %v", err)
	}
}

// TestToRepository: versions count up from what is on disk, an explicit existing version is refused,
// no temporary directory is left behind, and config.json carries the tensors while keeping the
// settings an operator put there.
func TestToRepository(t *testing.T) {
	spec := model.Spec{Kind: model.KindMLP, Inputs: 4, Hidden: []int{3}, Classes: 3}
	_, p := trainedLike(t, spec, 3)
	net, err := Network(spec, p, Softmax, MNISTNames, "")
	if err != nil {
		t.Fatal(err)
	}
	repo := t.TempDir()
	if err := os.MkdirAll(filepath.Join(repo, "digits", "7"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "digits", "config.json"),
		[]byte(`{"max_batch_size": 8, "response_cache": true, "inputs": [{"name": "old", "datatype": "FP32", "dims": [9]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := ToRepository(repo, "digits", net, Options{})
	if err != nil || v != 8 {
		t.Fatalf("first export: version %d, %v (want 8, after 7 on disk)", v, err)
	}
	if v, err = ToRepository(repo, "digits", net, Options{}); err != nil || v != 9 {
		t.Fatalf("second export: version %d, %v", v, err)
	}
	if _, err := ToRepository(repo, "digits", net, Options{Version: 9}); errs.KindOf(err) != errs.KindAlreadyExists {
		t.Fatalf("explicit existing version: %v", err)
	}
	want, err := net.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(repo, "digits", "9", FileName))
	if err != nil || string(got) != string(want) {
		t.Fatalf("version 9 model: %d bytes, %v", len(got), err)
	}
	entries, _ := os.ReadDir(filepath.Join(repo, "digits"))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Fatalf("left behind %s", e.Name())
		}
	}
	var cfg struct {
		MaxBatchSize  int          `json:"max_batch_size"`
		ResponseCache bool         `json:"response_cache"`
		Platform      string       `json:"platform"`
		Inputs        []tensorSpec `json:"inputs"`
		Outputs       []tensorSpec `json:"outputs"`
	}
	b, err := os.ReadFile(filepath.Join(repo, "digits", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.MaxBatchSize != 8 || !cfg.ResponseCache || cfg.Platform != "onnxruntime_onnx" ||
		len(cfg.Inputs) != 1 || cfg.Inputs[0].Name != "pixels" || cfg.Inputs[0].Dims[0] != 4 ||
		len(cfg.Outputs) != 2 || cfg.Outputs[0].Name != "probabilities" || cfg.Outputs[0].Dims[0] != 3 ||
		cfg.Outputs[1].Name != "label" || cfg.Outputs[1].Datatype != "INT64" {
		t.Fatalf("config.json: %s", b)
	}
	if _, err := ToRepository(repo, "../up", net, Options{}); errs.KindOf(err) != errs.KindInvalidArgument {
		t.Fatalf("name ../up: %v", err)
	}
}
