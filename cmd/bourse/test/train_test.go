package cli_test

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/testenv"
)

const (
	trainAdminKey  = "train-admin"
	trainWorkerKey = "train-worker"
	trainKeys      = trainAdminKey + "=admin:ops," + trainWorkerKey + "=service:training-worker"
)

// trainingPlatform is Consul and a training coordinator; the CLI starts the workers itself.
func trainingPlatform(t *testing.T) (consulAddr, workerBin, keyFile string) {
	t.Helper()
	agent := testenv.StartConsul(t)
	testenv.StartService(t, testenv.Build(t, "github.com/bourse-dev/bourse/services/training-coordinator/cmd/training-coordinator"), nil,
		"--consul-addr="+agent.Addr, "--api-keys="+trainKeys, "--check-interval=1s", "--data-dir="+filepath.Join(t.TempDir(), "coordinator"))
	testenv.WaitFor(t, 20*time.Second, "coordinator passing", func() bool { return len(agent.Passing(t, "training-coordinator")) == 1 })
	keyFile = filepath.Join(t.TempDir(), "worker.key")
	if err := os.WriteFile(keyFile, []byte(trainWorkerKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return agent.Addr, testenv.Build(t, "github.com/bourse-dev/bourse/services/training-coordinator/cmd/training-worker"), keyFile
}

func trainArgs(consulAddr, workerBin, keyFile, plot string) []string {
	return []string{"--consul", consulAddr, "--api-key", trainAdminKey, "--timeout", "30s", "train",
		"--dataset", "mnist", "--model", "mlp", "--hidden", "32", "--train-limit", "2000", "--test-limit", "500",
		"--steps", "60", "--batch", "32", "--lr", "0.1", "--eval-interval", "20", "--workers", "2", "--min-workers", "2",
		"--worker-bin", workerBin, "--worker-api-key-file", keyFile, "--plot", plot}
}

// bourse train starts two local workers, follows the job to the end with a progress bar that ends
// at 100%, and writes the loss/accuracy plot.
func TestTrainStartsWorkersAndPlots(t *testing.T) {
	consulAddr, workerBin, keyFile := trainingPlatform(t)
	plot := filepath.Join(t.TempDir(), "train.png")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.Build(t, "github.com/bourse-dev/bourse/cmd/bourse"), trainArgs(consulAddr, workerBin, keyFile, plot)...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 20 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bourse train: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	out := stderr.String()
	for _, want := range []string{"started 2 local workers", "100%", "step 60/60", "2 workers", "succeeded", "plot " + plot} {
		if !strings.Contains(out, want) {
			t.Errorf("bourse train did not print %q:\n%s", want, out)
		}
	}
	f, err := os.Open(plot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("the plot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 300 {
		t.Errorf("plot is %v", b)
	}
}

// The same in a real terminal: the bar redraws in place on one line and ends at 100%.
func TestTrainProgressInATerminal(t *testing.T) {
	consulAddr, workerBin, keyFile := trainingPlatform(t)
	plot := filepath.Join(t.TempDir(), "train.png")
	line := testenv.Build(t, "github.com/bourse-dev/bourse/cmd/bourse")
	for _, a := range trainArgs(consulAddr, workerBin, keyFile, plot) {
		line += " " + a
	}
	term := testenv.StartTerminal(t, 160, 40, line+"; echo EXIT=$?; sleep 60")
	screen := term.WaitScreen(t, 3*time.Minute, "EXIT=")
	if !strings.Contains(screen, "EXIT=0") {
		t.Fatalf("bourse train failed:\n%s", screen)
	}
	if n := strings.Count(screen, "train ["); n != 1 {
		t.Errorf("the progress bar shows on %d lines, want one redrawn in place:\n%s", n, screen)
	}
	if !strings.Contains(screen, "100% step 60/60") {
		t.Errorf("the bar does not end at 100%%:\n%s", screen)
	}
}

// Local workers that die at once make bourse train fail with their last words, not wait forever.
func TestTrainFailsWhenItsWorkersDie(t *testing.T) {
	consulAddr, _, keyFile := trainingPlatform(t)
	dying := filepath.Join(t.TempDir(), "dying-worker")
	if err := os.WriteFile(dying, []byte("#!/bin/sh\necho 'worker: cannot load the dataset' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testenv.Build(t, "github.com/bourse-dev/bourse/cmd/bourse"), trainArgs(consulAddr, dying, keyFile, "-")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || ctx.Err() != nil {
		t.Fatalf("bourse train with dying workers: %v (want exit 1 before the deadline)\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "every local worker exited") || !strings.Contains(stderr.String(), "cannot load the dataset") {
		t.Errorf("the error does not say why:\n%s", stderr.String())
	}
}
