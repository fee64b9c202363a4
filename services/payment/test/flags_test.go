package payment_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/testenv"
)

// The payment binary refuses to start with a capture window that is not positive, naming the flag.
func TestCaptureWindowMustBePositive(t *testing.T) {
	bin := testenv.Build(t, paymentPkg)
	for _, v := range []string{"0", "-1h"} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, bin, "--capture-window="+v, "--data-dir="+filepath.Join(t.TempDir(), "payment"),
			"--api-keys="+keyring, "--grpc-addr=127.0.0.1:0", "--metrics-addr=127.0.0.1:0").CombinedOutput()
		cancel()
		if _, exited := err.(*exec.ExitError); !exited || !strings.Contains(string(out), "--capture-window must be positive") {
			t.Fatalf("--capture-window=%s: %v\n%s", v, err, out)
		}
	}
}

// The binary refuses a --max-backoff shorter than the first retry's wait, naming the flag.
func TestMaxBackoffAtLeastASecond(t *testing.T) {
	bin := testenv.Build(t, paymentPkg)
	for _, v := range []string{"0", "500ms", "-1h"} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, bin, "--max-backoff="+v, "--data-dir="+filepath.Join(t.TempDir(), "payment"),
			"--api-keys="+keyring, "--grpc-addr=127.0.0.1:0", "--metrics-addr=127.0.0.1:0").CombinedOutput()
		cancel()
		if _, exited := err.(*exec.ExitError); !exited || !strings.Contains(string(out), "--max-backoff must be at least 1s") {
			t.Fatalf("--max-backoff=%s: %v\n%s", v, err, out)
		}
	}
}

// The binary refuses a --settle-after too short for --processor-timeout: its authorization calls
// end a grace before the janitor may look them up, so every call would be cut short.
func TestSettleAfterMustCoverTheProcessorTimeout(t *testing.T) {
	bin := testenv.Build(t, paymentPkg)
	for _, args := range [][]string{{"--processor-timeout=10s", "--settle-after=1s"}, {"--processor-timeout=3s", "--settle-after=3s"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, bin, append(args, "--data-dir="+filepath.Join(t.TempDir(), "payment"),
			"--api-keys="+keyring, "--grpc-addr=127.0.0.1:0", "--metrics-addr=127.0.0.1:0")...).CombinedOutput()
		cancel()
		if _, exited := err.(*exec.ExitError); !exited || !strings.Contains(string(out), "--settle-after") || !strings.Contains(string(out), "--processor-timeout") {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
}
