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
