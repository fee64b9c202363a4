package testenv

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildMu  sync.Mutex
	builtDir string
	built    = map[string]string{}
)

// Build compiles a main package of the workspace once per test process and returns the binary.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := built[pkg]; ok {
		return bin
	}
	if builtDir == "" {
		removeOrphanBuilds()
		dir := filepath.Join(os.TempDir(), testbinPrefix+strconv.Itoa(os.Getpid()))
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		builtDir = dir
	}
	bin := filepath.Join(builtDir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = RepoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	built[pkg] = bin
	return bin
}

// testbinPrefix names the directory of a test process's binaries, followed by its pid. The
// binaries serve every test of the process, so nothing removes them while it runs; the next test
// process that builds removes those of processes that have exited (a whole suite would otherwise
// leave a few hundred megabytes behind per package).
const testbinPrefix = "bourse-testbin-pid-"

// removeOrphanBuilds removes the binaries of test processes that no longer run.
func removeOrphanBuilds() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), testbinPrefix+"*"))
	for _, dir := range dirs {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(dir), testbinPrefix))
		if err != nil || pid == os.Getpid() {
			continue // not a pid, or ours
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(dir)
		}
	}
}

// Process is a running service started by the runtime.
type Process struct {
	Cmd         *exec.Cmd
	GRPCAddr    string
	MetricsAddr string
	LogPath     string
	exited      chan struct{}
	exitErr     error
}

// StartService runs bin with args plus --grpc-addr/--metrics-addr on free ports and --ready-file,
// waits until it is serving, and stops it (SIGTERM) when the test ends.
func StartService(t testing.TB, bin string, env []string, args ...string) *Process {
	t.Helper()
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready.json")
	p := &Process{LogPath: filepath.Join(dir, "service.log"), exited: make(chan struct{})}
	logFile, err := os.Create(p.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	args = append([]string{"--grpc-addr=127.0.0.1:0", "--metrics-addr=127.0.0.1:0", "--ready-file=" + ready}, args...)
	p.Cmd = exec.Command(bin, args...)
	p.Cmd.Env = append(os.Environ(), env...)
	p.Cmd.Stdout, p.Cmd.Stderr = logFile, logFile
	// A test binary that dies (a timeout's panic, a SIGKILL) runs no cleanup: the kernel ends its
	// services instead of leaving them serving, and spending CPU, on the machine.
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exitErr = p.Cmd.Wait(); logFile.Close(); close(p.exited) }()
	t.Cleanup(func() {
		p.Signal(syscall.SIGTERM)
		if !p.WaitExit(15 * time.Second) {
			_ = p.Cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("log of %s:\n%s", filepath.Base(bin), p.Log())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(ready); err == nil {
			var r struct {
				GRPCAddr    string `json:"grpc_addr"`
				MetricsAddr string `json:"metrics_addr"`
			}
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatal(err)
			}
			p.GRPCAddr, p.MetricsAddr = r.GRPCAddr, r.MetricsAddr
			return p
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited during start (%v):\n%s", filepath.Base(bin), p.exitErr, p.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready in 30s:\n%s", filepath.Base(bin), p.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) { _ = p.Cmd.Process.Signal(sig) }

// WaitExit waits up to d for the process to exit and reports whether it did.
func (p *Process) WaitExit(d time.Duration) bool {
	select {
	case <-p.exited:
		return true
	case <-time.After(d):
		return false
	}
}

// ExitErr is the process's exit error once it has exited.
func (p *Process) ExitErr() error { <-p.exited; return p.exitErr }

// Log returns what the process has logged so far.
func (p *Process) Log() string { return readFile(p.LogPath) }

// LogContains reports whether the log has s.
func (p *Process) LogContains(s string) bool { return strings.Contains(p.Log(), s) }
