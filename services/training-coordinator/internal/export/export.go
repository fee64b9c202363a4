// Package export turns trained parameters into an ONNX model (through pkg/onnx) and writes it into
// an inference model repository as a new version: <repo>/<name>/<version>/model.onnx beside
// <repo>/<name>/config.json. The inference service then serves it after RepositoryModelLoad (or its
// next poll).
package export

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/pkg/fraud"
	"github.com/bourse-dev/bourse/pkg/onnx"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/model"
)

// Head chooses the exported output.
type Head int

const (
	// Softmax exports class probabilities FP32 [batch, classes] and, with a label name, the
	// predicted class INT64 [batch].
	Softmax Head = iota
	// Sigmoid exports a two-class model as the probability of class 1, FP32 [batch, 1]: the
	// last layer's two logits are folded into their difference, since softmax(z)₁ = σ(z₁ − z₀).
	// It is the fraud model's head (pkg/fraud: "probability" of fraud).
	Sigmoid
)

// Names are the tensor names of the exported model.
type Names struct {
	Input, Output string
	Label         string // optional: an INT64 [batch] predicted-class output
}

// MNISTNames are the tensors of the exported MNIST classifiers.
var MNISTNames = Names{Input: "pixels", Output: "probabilities", Label: "label"}

// FraudNames are the fraud model's tensors, as payment calls them (pkg/fraud).
var FraudNames = Names{Input: fraud.InputName, Output: fraud.OutputName}

// Network converts spec's parameters (layout: model.Layout) into a pkg/onnx network.
func Network(spec model.Spec, params []float32, head Head, names Names, doc string) (onnx.Dense, error) {
	m, err := model.New(spec)
	if err != nil {
		return onnx.Dense{}, err
	}
	if len(params) != m.NumParams() {
		return onnx.Dense{}, errs.Invalid("params", "%d values, the model has %d", len(params), m.NumParams())
	}
	for i, v := range params {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return onnx.Dense{}, errs.Invalid("params", "value %d is %v", i, v)
		}
	}
	layout := model.Layout(spec)
	net := onnx.Dense{InputName: names.Input, OutputName: names.Output, LabelName: names.Label, DocString: doc}
	for i, l := range layout {
		layer := onnx.Layer{
			In: l.In, Out: l.Out,
			W: append([]float32(nil), params[l.WOffset:l.WOffset+l.In*l.Out]...),
			B: append([]float32(nil), params[l.BOffset:l.BOffset+l.Out]...),
		}
		if i < len(layout)-1 {
			layer.Activation = onnx.ReLU
		}
		net.Layers = append(net.Layers, layer)
	}
	switch head {
	case Softmax:
		net.Head = onnx.Softmax
	case Sigmoid:
		if spec.Classes != 2 {
			return onnx.Dense{}, errs.Invalid("classes", "a sigmoid head needs 2 classes, the model has %d", spec.Classes)
		}
		last := &net.Layers[len(net.Layers)-1]
		w := make([]float32, last.In)
		for i := range w {
			w[i] = last.W[i*2+1] - last.W[i*2]
		}
		last.W, last.B, last.Out = w, []float32{last.B[1] - last.B[0]}, 1
		net.Head = onnx.Sigmoid
	default:
		return onnx.Dense{}, errs.Invalid("head", "unknown head %d", head)
	}
	if err := net.Validate(); err != nil {
		return onnx.Dense{}, errs.Wrap(errs.KindInvalidArgument, err, "export")
	}
	return net, nil
}

// Options of a repository export.
type Options struct {
	// Version to write; 0 takes the one after the highest on disk. An existing version is never
	// overwritten (AlreadyExists).
	Version int64
	// MaxBatchSize goes into a new config.json (default 256).
	MaxBatchSize int
}

// modelName is what inference accepts as a directory name of the repository.
var modelName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// FileName is the model file in a version directory.
const FileName = "model.onnx"

// ToRepository writes net into repo as model name and returns the version written. The version
// directory appears whole (built under a temporary name, synced, renamed), then config.json is
// (re)written atomically with the tensors of net, keeping the other settings of an existing config
// (batching, version policy, access rules).
func ToRepository(repo, name string, net onnx.Dense, opts Options) (int64, error) {
	if !modelName.MatchString(name) {
		return 0, errs.Invalid("name", "%q is not a model name (letters, digits, _ . -)", name)
	}
	if opts.Version < 0 {
		return 0, errs.Invalid("version", "%d is negative", opts.Version)
	}
	if opts.MaxBatchSize == 0 {
		opts.MaxBatchSize = 256
	}
	data, err := net.Marshal()
	if err != nil {
		return 0, errs.Wrap(errs.KindInvalidArgument, err, "export")
	}
	dir := filepath.Join(repo, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	tmp, err := os.MkdirTemp(dir, ".export-*")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	if err := writeSynced(filepath.Join(tmp, FileName), data); err != nil {
		return 0, err
	}
	if err := syncDir(tmp); err != nil {
		return 0, err
	}
	version := opts.Version
	// Another exporter may take the next version between the scan and the rename: take the one
	// after it (a bounded number of times).
	for attempt := 0; ; attempt++ {
		if opts.Version == 0 {
			if version, err = nextVersion(dir); err != nil {
				return 0, err
			}
		}
		err = os.Rename(tmp, filepath.Join(dir, strconv.FormatInt(version, 10)))
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrExist) && !isNotEmpty(err) {
			return 0, err
		}
		if opts.Version != 0 || attempt == 10 {
			return 0, errs.New(errs.KindAlreadyExists, "export: %s version %d already exists", name, version)
		}
	}
	if err := syncDir(dir); err != nil {
		return version, err
	}
	if err := writeConfig(dir, net, opts.MaxBatchSize); err != nil {
		return version, err
	}
	return version, nil
}

func nextVersion(dir string) (int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var top int64
	for _, e := range entries {
		if n, err := strconv.ParseInt(e.Name(), 10, 64); err == nil && n > top {
			top = n
		}
	}
	return top + 1, nil
}

type tensorSpec struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Dims     []int64 `json:"dims"`
}

// writeConfig writes config.json with net's tensors, keeping every other key of an existing file.
func writeConfig(dir string, net onnx.Dense, maxBatch int) error {
	path := filepath.Join(dir, "config.json")
	cfg := map[string]json.RawMessage{}
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &cfg); err != nil {
			return errs.Wrap(errs.KindFailedPrecondition, err, "export: existing %s", path)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	set := func(key string, v any) {
		b, _ := json.Marshal(v)
		cfg[key] = b
	}
	outputs := []tensorSpec{{Name: net.OutputName, Datatype: "FP32", Dims: []int64{int64(net.Classes())}}}
	if net.LabelName != "" {
		outputs = append(outputs, tensorSpec{Name: net.LabelName, Datatype: "INT64", Dims: []int64{}})
	}
	set("platform", "onnxruntime_onnx")
	set("inputs", []tensorSpec{{Name: net.InputName, Datatype: "FP32", Dims: []int64{int64(net.Inputs())}}})
	set("outputs", outputs)
	if _, ok := cfg["max_batch_size"]; !ok {
		set("max_batch_size", maxBatch)
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := writeSynced(tmp, append(b, '\n')); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// FoldStandardization makes net, trained on standardized inputs (x − mean)/std, take raw inputs:
// the first layer becomes W'ᵢⱼ = Wᵢⱼ/stdᵢ and b'ⱼ = bⱼ − Σᵢ meanᵢ·Wᵢⱼ/stdᵢ (sums in float64).
func FoldStandardization(net *onnx.Dense, mean, std []float32) error {
	if len(net.Layers) == 0 {
		return errs.Invalid("layers", "the network has none")
	}
	l := &net.Layers[0]
	if len(mean) != l.In || len(std) != l.In {
		return errs.Invalid("mean", "%d means and %d deviations for %d inputs", len(mean), len(std), l.In)
	}
	for i, s := range std {
		if !(s > 0) || math.IsInf(float64(s), 0) {
			return errs.Invalid("std", "deviation %d is %v", i, s)
		}
	}
	w := make([]float32, len(l.W))
	b := make([]float64, l.Out)
	for j := range b {
		b[j] = float64(l.B[j])
	}
	for i := range l.In {
		for j := range l.Out {
			scaled := float64(l.W[i*l.Out+j]) / float64(std[i])
			w[i*l.Out+j] = float32(scaled)
			b[j] -= float64(mean[i]) * scaled
		}
	}
	l.W = w
	l.B = make([]float32, l.Out)
	for j, v := range b {
		l.B[j] = float32(v)
	}
	return nil
}
