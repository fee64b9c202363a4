// Package testutil gives the inference tests the real onnxruntime backend and copies of the
// example model repository (testdata/models: an iris random forest and a vector-sum network).
package testutil

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/bourse-dev/bourse/pkg/testenv"
	"github.com/bourse-dev/bourse/services/inference/internal/backend/onnx"
)

// IrisRows are six iris measurements with the labels the model is known to predict for them.
var (
	IrisRows = [][4]float32{
		{5.9, 3.0, 5.1, 1.8}, {6.8, 2.8, 4.8, 1.4}, {6.3, 2.3, 4.4, 1.3},
		{6.5, 3.0, 5.5, 1.8}, {7.7, 2.8, 6.7, 2.0}, {5.5, 2.5, 4.0, 1.3},
	}
	IrisLabels = []int64{2, 1, 1, 2, 2, 1}
)

// ORTLibrary is the onnxruntime library installed into ./bin by scripts/onnxruntime.sh.
func ORTLibrary(t testing.TB) string {
	t.Helper()
	return testenv.Tool(t, "libonnxruntime.so")
}

// ORT returns the real onnxruntime backend.
func ORT(t testing.TB) *onnx.Backend {
	t.Helper()
	b, err := onnx.New(ORTLibrary(t), onnx.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ModelsDir is the example repository in the source tree.
func ModelsDir(t testing.TB) string {
	return filepath.Join(testenv.RepoRoot(t), "services", "inference", "testdata", "models")
}

// CopyRepo copies the named example models into a fresh repository directory.
func CopyRepo(t testing.TB, models ...string) string {
	t.Helper()
	dst := t.TempDir()
	for _, m := range models {
		if err := os.CopyFS(filepath.Join(dst, m), os.DirFS(filepath.Join(ModelsDir(t), m))); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// WriteFile writes a file, creating its directory.
func WriteFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// CopyVersion copies version from of a model in repo to version to (as a publisher would).
func CopyVersion(t testing.TB, repo, model, from, to string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, model, from, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	// Write then rename, so a polling server never sees half a file.
	tmp := filepath.Join(repo, model, "."+to+".tmp")
	WriteFile(t, filepath.Join(tmp, "model.onnx"), b)
	if err := os.Rename(tmp, filepath.Join(repo, model, to)); err != nil {
		t.Fatal(err)
	}
}

// FP32Bytes encodes float32s little-endian.
func FP32Bytes(vs ...float32) []byte {
	b := make([]byte, 0, 4*len(vs))
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

// IrisBytes encodes iris rows as the model's FP32 input.
func IrisBytes(rows ...[4]float32) []byte {
	var vs []float32
	for _, r := range rows {
		vs = append(vs, r[:]...)
	}
	return FP32Bytes(vs...)
}

// Int64s decodes little-endian int64s.
func Int64s(b []byte) []int64 {
	out := make([]int64, len(b)/8)
	for i := range out {
		out[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return out
}

// Float32s decodes little-endian float32s.
func Float32s(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// AddUnbatched copies model into the repository as name, with dynamic batching removed from its
// config: the same network served one request per execution, for comparisons.
func AddUnbatched(t testing.TB, repo, model, name string) {
	t.Helper()
	AddVariant(t, repo, model, name, func(cfg map[string]any) { delete(cfg, "dynamic_batching") })
}

// AddRestricted copies model into the repository as name with an access rule, like a fraud model
// that only the payment service and admins may use: allow is the config's "allow" list.
func AddRestricted(t testing.TB, repo, model, name string, allow ...string) {
	t.Helper()
	AddVariant(t, repo, model, name, func(cfg map[string]any) { cfg["allow"] = allow })
}

// AddVariant copies model into the repository as name, with edit applied to its config.
func AddVariant(t testing.TB, repo, model, name string, edit func(cfg map[string]any)) {
	t.Helper()
	src := filepath.Join(ModelsDir(t), model)
	if err := os.CopyFS(filepath.Join(repo, name), os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(repo, name, "config.json")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	edit(cfg)
	out, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	WriteFile(t, cfgPath, out)
}
