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

// refusesToStart runs the payment binary with args and wants it to exit before serving, saying
// every one of want.
func refusesToStart(t *testing.T, args []string, want ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, testenv.Build(t, paymentPkg), append(args, "--data-dir="+filepath.Join(t.TempDir(), "payment"),
		"--api-keys="+keyring, "--grpc-addr=127.0.0.1:0", "--metrics-addr=127.0.0.1:0")...).CombinedOutput()
	if _, exited := err.(*exec.ExitError); !exited {
		t.Fatalf("%v: %v, want an exit\n%s", args, err, out)
	}
	for _, w := range want {
		if !strings.Contains(string(out), w) {
			t.Fatalf("%v: exited without saying %q\n%s", args, w, out)
		}
	}
}

// The payment binary refuses to start with a capture window that is not positive, naming the flag.
func TestCaptureWindowMustBePositive(t *testing.T) {
	for _, v := range []string{"0", "-1h"} {
		refusesToStart(t, []string{"--capture-window=" + v}, "--capture-window must be positive")
	}
}

// The binary refuses a --max-backoff shorter than the first retry's wait, naming the flag.
func TestMaxBackoffAtLeastASecond(t *testing.T) {
	for _, v := range []string{"0", "500ms", "-1h"} {
		refusesToStart(t, []string{"--max-backoff=" + v}, "--max-backoff must be at least 1s")
	}
}

// The binary refuses a --database-timeout that would cut a loaded batch short, naming the flag.
func TestDatabaseTimeoutAtLeastASecond(t *testing.T) {
	for _, v := range []string{"0", "200ms", "-1s"} {
		refusesToStart(t, []string{"--database-timeout=" + v}, "--database-timeout must be at least 1s")
	}
}

// The binary refuses a --settle-after too short for --processor-timeout: its authorization calls
// end a grace before the janitor may look them up, so every call would be cut short.
func TestSettleAfterMustCoverTheProcessorTimeout(t *testing.T) {
	for _, args := range [][]string{{"--processor-timeout=10s", "--settle-after=1s"}, {"--processor-timeout=3s", "--settle-after=3s"}} {
		refusesToStart(t, args, "--settle-after", "--processor-timeout")
	}
}
