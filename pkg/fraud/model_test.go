package fraud_test

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/bourse-dev/bourse/pkg/fraud"
	onnxpb "github.com/bourse-dev/bourse/pkg/gen/onnx"
)

// A smaller spec than make run's, so the tests stay quick under the race detector.
var testSpec = fraud.Spec{Seed: 11, Samples: 8000, Fit: fraud.FitOptions{Epochs: 200, LearningRate: 2, L2: 1e-3}}

func TestFitLearnsTheFraudPatterns(t *testing.T) {
	m, err := testSpec.Build()
	if err != nil {
		t.Fatal(err)
	}
	held, err := fraud.Generate(testSpec.Seed+1, 8000)
	if err != nil {
		t.Fatal(err)
	}
	// The constant predictor at the base rate is the loss to beat.
	var frauds float64
	for _, s := range held {
		if s.Fraud {
			frauds++
		}
	}
	p := frauds / float64(len(held))
	baseline := -(p*math.Log(p) + (1-p)*math.Log(1-p))
	loss, auc := m.LogLoss(held), m.AUC(held)
	if auc < 0.93 || loss > 0.7*baseline {
		t.Errorf("held-out AUC %.4f (want ≥ 0.93), log loss %.4f (want ≤ 0.7 × the base rate's %.4f)", auc, loss, baseline)
	}
	// The directions the generating process implies.
	w := m.Weights
	for _, c := range []struct {
		name     string
		weight   float32
		positive bool
	}{
		{"log amount", w[fraud.FeatLogAmount], true},
		{"bank transfer", w[fraud.FeatIsBankTransfer], false},
		{"major currency", w[fraud.FeatMajorCurrency], false},
		{"log account age", w[fraud.FeatLogAccountAge], false},
		{"deposits in the last hour", w[fraud.FeatDepositsLastHour], true},
	} {
		if (c.weight > 0) != c.positive {
			t.Errorf("weight of %s is %v", c.name, c.weight)
		}
	}
	high := fraud.Features{AmountMajor: 4000, Currency: "TRY", Method: "card", DepositsLastHour: 5, DepositsLastDay: 6, AmountLastDayMajor: 9000}
	low := fraud.Features{AmountMajor: 300, Currency: "EUR", Method: "bank_transfer", AccountAgeDays: 700, DepositsLastDay: 1, AmountLastDayMajor: 250}
	ph, pl := m.Probability(high.Vector()), m.Probability(low.Vector())
	if ph < 0.5 || pl > 0.01 {
		t.Errorf("high-risk payment %.4f (want > 0.5), low-risk %.6f (want < 0.01)", ph, pl)
	}
	t.Logf("weights %v bias %v; AUC %.4f, log loss %.4f (base rate %.4f); high %.4f, low %.6f", m.Weights, m.Bias, auc, loss, baseline, ph, pl)

	// The ONNX network computes the same probabilities.
	d := m.Dense()
	var x []float32
	for _, s := range held[:100] {
		x = append(x, s.Vector()...)
	}
	probs, _, err := d.Forward(x, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range held[:100] {
		if got, want := float64(probs[i]), m.Probability(s.Vector()); math.Abs(got-want) > 1e-7 {
			t.Fatalf("sample %d: network %v, model %v", i, got, want)
		}
	}
}

func TestFitIsDeterministicAndRefusesBadInput(t *testing.T) {
	samples, _ := fraud.Generate(5, 2000)
	opts := fraud.FitOptions{Epochs: 50, LearningRate: 2, L2: 1e-3}
	a, err := fraud.Fit(samples, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := fraud.Fit(samples, opts)
	if a != b {
		t.Fatalf("two fits differ: %v, %v", a, b)
	}
	if more, _ := fraud.Fit(samples, fraud.FitOptions{Epochs: 51, LearningRate: 2, L2: 1e-3}); more == a {
		t.Fatal("one more epoch changed nothing: is the fit running?")
	}
	for _, c := range []struct {
		samples []fraud.Sample
		opts    fraud.FitOptions
		want    string
	}{
		{nil, opts, "no samples"},
		{samples, fraud.FitOptions{Epochs: 0, LearningRate: 1}, "epochs 0"},
		{samples, fraud.FitOptions{Epochs: 10, LearningRate: 0}, "learning rate 0"},
		{samples, fraud.FitOptions{Epochs: 10, LearningRate: math.NaN()}, "learning rate NaN"},
		{samples, fraud.FitOptions{Epochs: 10, LearningRate: 1, L2: -1}, "L2 -1"},
	} {
		if _, err := fraud.Fit(c.samples, c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Fit(%d samples, %+v): %v, want %q", len(c.samples), c.opts, err, c.want)
		}
	}
}

func TestWriteRepositoryIsByteIdentical(t *testing.T) {
	read := func(dir string) (model, config []byte) {
		t.Helper()
		model, err := os.ReadFile(filepath.Join(dir, "1", "model.onnx"))
		if err != nil {
			t.Fatal(err)
		}
		config, err = os.ReadFile(filepath.Join(dir, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		return model, config
	}
	root := t.TempDir()
	for _, name := range []string{"a", "b"} {
		if _, err := fraud.WriteRepository(filepath.Join(root, name, "fraud"), testSpec); err != nil {
			t.Fatal(err)
		}
	}
	ma, ca := read(filepath.Join(root, "a", "fraud"))
	mb, cb := read(filepath.Join(root, "b", "fraud"))
	if !bytes.Equal(ma, mb) || !bytes.Equal(ca, cb) {
		t.Fatal("the same spec wrote different files")
	}
	other := testSpec
	other.Seed++
	if _, err := fraud.WriteRepository(filepath.Join(root, "c", "fraud"), other); err != nil {
		t.Fatal(err)
	}
	if mc, _ := read(filepath.Join(root, "c", "fraud")); bytes.Equal(ma, mc) {
		t.Fatal("another seed wrote the same model")
	}
	// The file is the model's network with its provenance.
	var m onnxpb.ModelProto
	if err := proto.Unmarshal(ma, &m); err != nil {
		t.Fatal(err)
	}
	meta := map[string]string{}
	for _, e := range m.MetadataProps {
		meta[e.Key] = e.Value
	}
	if m.IrVersion != 10 || m.OpsetImport[0].Version != 21 || meta["feature_version"] != strconv.Itoa(fraud.FeatureVersion) || meta["dataset_seed"] != "11" || meta["dataset_samples"] != "8000" {
		t.Fatalf("ir %d opset %v metadata %v", m.IrVersion, m.OpsetImport, meta)
	}
	in, out := m.Graph.Input[0], m.Graph.Output[0]
	if in.Name != fraud.InputName || out.Name != fraud.OutputName || len(m.Graph.Output) != 1 ||
		in.Type.GetTensorType().Shape.Dim[1].GetDimValue() != fraud.NumFeatures {
		t.Fatalf("graph input %v output %v", in, m.Graph.Output)
	}
	if !bytes.Contains(ca, []byte(`"dims": [8]`)) || !bytes.Contains(ca, []byte(`"name": "features"`)) {
		t.Fatalf("config.json:\n%s", ca)
	}
	entries, _ := os.ReadDir(filepath.Join(root, "a", "fraud"))
	if len(entries) != 2 {
		t.Fatalf("model directory holds %v, want config.json and 1/", entries)
	}
}
