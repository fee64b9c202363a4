package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// MakeRunAddrs are the addresses make run listens on (Consul, Jaeger, the services): README examples
// and the demo are written for them, so they must be free.
var MakeRunAddrs = []string{"127.0.0.1:8500", "127.0.0.1:4317", "127.0.0.1:16686",
	"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003", "127.0.0.1:7004", "127.0.0.1:7005", "127.0.0.1:7006", "127.0.0.1:7015",
	"127.0.0.1:7101", "127.0.0.1:7102", "127.0.0.1:12111", "127.0.0.1:12112"}

// MakeRun is the platform as `make run` starts it, on a fresh run directory.
type MakeRun struct {
	Root   string // the repository
	RunDir string // what make run calls .run
	logs   string
}

// StartMakeRun runs scripts/run.sh on a fresh run directory, waits until it says the platform is up,
// and stops it the way Ctrl-C does when the test ends. The pinned tools must be in ./bin (make test
// builds them first) and make run's addresses free.
func StartMakeRun(t testing.TB, timeout time.Duration) *MakeRun {
	t.Helper()
	root := RepoRoot(t)
	for _, tool := range []string{"consul", "jaeger", "grpcurl"} {
		if _, err := os.Stat(filepath.Join(root, "bin", tool)); err != nil {
			t.Fatalf("bin/%s is missing: run `make tools` (make test does) first", tool)
		}
	}
	for _, addr := range MakeRunAddrs {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			t.Fatalf("%s is taken: this test runs make run on its own addresses; stop the running platform first", addr)
		}
	}
	m := &MakeRun{Root: root, RunDir: t.TempDir(), logs: filepath.Join(t.TempDir(), "run.out")}
	cmd := exec.Command("bash", "scripts/run.sh")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "BOURSE_RUN_DIR="+m.RunDir)
	// A test binary that dies without its cleanups (killed, or a -timeout panic) must not leave
	// the platform holding make run's addresses: run.sh stops what it started on SIGTERM, as on
	// Ctrl-C.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(m.logs)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	up := make(chan struct{})
	go func() { // owned here: ends when run.sh's output does
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			fmt.Fprintln(logFile, sc.Text())
			if sc.Text() == "bourse is up." {
				close(up)
			}
		}
		exited <- cmd.Wait()
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(90 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			t.Errorf("make run did not stop within 90s of Ctrl-C")
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("make run:\n%s%s", readFile(m.logs), m.ServiceLogs())
		}
	})
	select {
	case <-up:
		return m
	case err := <-exited:
		stopped = true
		// What it started may still hold make run's addresses: end its process group too.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		t.Fatalf("make run exited before the platform was up (%v)", err)
	case <-time.After(timeout):
		t.Fatalf("make run was not up within %v", timeout)
	}
	return nil
}

// Key reads one of make run's keys (admin.key, alice.key, ...).
func (m *MakeRun) Key(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(m.RunDir, "keys", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// ServiceLogs is the tail of every process's log, for a failure message.
func (m *MakeRun) ServiceLogs() string {
	logs, _ := filepath.Glob(filepath.Join(m.RunDir, "*.log"))
	var b strings.Builder
	for _, l := range logs {
		text := readFile(l)
		if lines := strings.Split(text, "\n"); len(lines) > 30 {
			text = strings.Join(lines[len(lines)-30:], "\n")
		}
		fmt.Fprintf(&b, "--- %s (tail)\n%s\n", filepath.Base(l), text)
	}
	return b.String()
}

// Run runs a shell command line in the repository with make run's environment (BOURSE_RUN_DIR) and
// returns its combined output.
func (m *MakeRun) Run(ctx context.Context, command string, env ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "bash", "-c", command)
	cmd.Dir = m.Root
	cmd.Env = append(append(os.Environ(), "BOURSE_RUN_DIR="+m.RunDir), env...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(out), fmt.Errorf("%s: exit %d", command, exit.ExitCode())
	}
	return string(out), err
}
