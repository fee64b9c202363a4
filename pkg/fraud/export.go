package fraud

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/bourse-dev/bourse/pkg/onnx"
)

// Spec is how a fraud model is made: a synthetic dataset from Seed, then Fit.
type Spec struct {
	Seed    uint64
	Samples int
	Fit     FitOptions
}

// DefaultSpec makes the `fraud` model of make run (about a second on one core).
var DefaultSpec = Spec{Seed: 1, Samples: 50_000, Fit: DefaultFit}

// Build generates the dataset and fits the model.
func (s Spec) Build() (Model, error) {
	samples, err := Generate(s.Seed, s.Samples)
	if err != nil {
		return Model{}, err
	}
	return Fit(samples, s.Fit)
}

// ModelVersion is the version directory WriteRepository writes the model into.
const ModelVersion = 1

// configJSON is the model's config in the inference repository: one FP32 vector per payment,
// batched (payment's concurrent deposits share one onnxruntime call), never cached (a score is cheap
// and the features of two deposits rarely repeat), and usable only by the payment service and admins:
// a fraudster who could query it would tune an attempt until it scores low.
var configJSON = `{
  "platform": "onnxruntime_onnx",
  "max_batch_size": 64,
  "inputs": [{"name": "` + InputName + `", "datatype": "FP32", "dims": [` + strconv.Itoa(NumFeatures) + `]}],
  "outputs": [{"name": "` + OutputName + `", "datatype": "FP32", "dims": [1]}],
  "dynamic_batching": {"max_queue_delay": "500us", "preferred_batch_sizes": [16, 32], "max_queue_size": 4096},
  "version_policy": {"latest": 1},
  "response_cache": false,
  "instances": 1,
  "allow": ["service:payment", "admin"]
}
`

// ConfigJSON is the model's config.json for the inference repository.
func ConfigJSON() []byte { return []byte(configJSON) }

// Network is the model as pkg/onnx's network, recording in its metadata how s made it.
func (m Model) Network(s Spec) onnx.Dense {
	d := m.Dense()
	d.DocString = "bourse fraud model: logistic regression over pkg/fraud.Vector, fitted on the synthetic dataset of pkg/fraud"
	d.Metadata = map[string]string{
		"feature_version": strconv.Itoa(FeatureVersion),
		"dataset_seed":    strconv.FormatUint(s.Seed, 10),
		"dataset_samples": strconv.Itoa(s.Samples),
		"fit":             fmt.Sprintf("epochs=%d learning_rate=%g l2=%g", s.Fit.Epochs, s.Fit.LearningRate, s.Fit.L2),
	}
	return d
}

// WriteRepository builds the model of s and writes dir/config.json and dir/<ModelVersion>/model.onnx
// (dir is the model's directory in an inference repository, e.g. <repo>/fraud). The same Spec writes
// the same bytes. Each file is replaced whole, model first, so a polling server never loads a model
// that does not match its config.
func WriteRepository(dir string, s Spec) (Model, error) {
	m, err := s.Build()
	if err != nil {
		return Model{}, err
	}
	if err := onnx.WriteFile(filepath.Join(dir, strconv.Itoa(ModelVersion), "model.onnx"), m.Network(s)); err != nil {
		return Model{}, err
	}
	if err := writeFile(filepath.Join(dir, "config.json"), ConfigJSON()); err != nil {
		return Model{}, err
	}
	return m, nil
}

// writeFile writes through a temporary file and a rename.
func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
