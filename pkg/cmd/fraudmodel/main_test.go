package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bourse-dev/bourse/pkg/testenv"
)

// The command as make run uses it (built without the race detector, default flags) writes the same
// bytes twice.
func TestSameSeedWritesByteIdenticalFiles(t *testing.T) {
	bin := testenv.Build(t, "github.com/bourse-dev/bourse/pkg/cmd/fraudmodel")
	root := t.TempDir()
	var models, configs [2][]byte
	for i := range 2 {
		dir := filepath.Join(root, string(rune('a'+i)), "fraud")
		out, err := exec.Command(bin, "-out", dir).CombinedOutput()
		if err != nil {
			t.Fatalf("fraudmodel: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "AUC 0.9") {
			t.Errorf("fraudmodel printed %q, want a held-out AUC above 0.9", out)
		}
		if models[i], err = os.ReadFile(filepath.Join(dir, "1", "model.onnx")); err != nil {
			t.Fatal(err)
		}
		if configs[i], err = os.ReadFile(filepath.Join(dir, "config.json")); err != nil {
			t.Fatal(err)
		}
	}
	if len(models[0]) == 0 || !bytes.Equal(models[0], models[1]) || !bytes.Equal(configs[0], configs[1]) {
		t.Fatal("two runs with the same seed wrote different files")
	}
}

func TestFlags(t *testing.T) {
	var out bytes.Buffer
	for _, args := range [][]string{nil, {"-out"}, {"-out", t.TempDir(), "extra"}, {"-samples", "x", "-out", t.TempDir()}} {
		if err := run(args, &out); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
	if err := run([]string{"-out", t.TempDir(), "-samples", "-5"}, &out); err == nil || !strings.Contains(err.Error(), "samples is outside") {
		t.Errorf("negative samples: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "fraud")
	if err := run([]string{"-out", dir, "-samples", "3000", "-epochs", "20", "-seed", "9"}, &out); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "1", "model.onnx")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "seed 9, 3000 samples, 20 epochs") {
		t.Errorf("output %q", out.String())
	}
}
