package docstest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The addresses make run listens on: the examples are written for them, so they must be free.
var makeRunAddrs = []string{"127.0.0.1:8500", "127.0.0.1:4317", "127.0.0.1:16686",
	"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003", "127.0.0.1:7004", "127.0.0.1:7005", "127.0.0.1:7006"}

// TestReadmeExamples starts the platform as `make run` does, on a fresh run directory, and runs every
// shell example of every README in the repository, in order, checking each against its comment.
func TestReadmeExamples(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"consul", "jaeger", "grpcurl"} {
		if _, err := os.Stat(filepath.Join(root, "bin", tool)); err != nil {
			t.Fatalf("bin/%s is missing: run `make tools` (make test does) first", tool)
		}
	}
	for _, addr := range makeRunAddrs {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			t.Fatalf("%s is taken: the README examples need make run's addresses; stop the running platform first", addr)
		}
	}
	readmes := readmeFiles(t, root)

	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	stop := startPlatform(ctx, t, root)
	defer stop()

	ran := 0
	for _, rel := range readmes {
		md, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		blocks, err := Blocks(string(md))
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		results, err := Run(ctx, root, blocks)
		for _, r := range results {
			ran++
			if why := r.Failure(); why != "" {
				t.Errorf("%s:%d: %s\n  %s\n  output:\n%s", rel, r.Command.Line, why,
					strings.ReplaceAll(r.Command.Text, "\n", "\n  "), indent(r.Output))
			}
		}
		if err != nil {
			t.Errorf("%s: %v", rel, err)
		}
	}
	if ran == 0 {
		t.Fatal("no README example ran")
	}
	t.Logf("%d README commands ran against make run", ran)
}

// readmeFiles lists the repository's READMEs that git tracks: the top one first, then the rest in
// path order.
func readmeFiles(t *testing.T, root string) []string {
	out, err := exec.Command("git", "-C", root, "ls-files", "README.md", "*/README.md").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	files := strings.Fields(string(out))
	slices.SortFunc(files, func(a, b string) int {
		if a == "README.md" || b == "README.md" {
			return map[bool]int{true: -1, false: 1}[a == "README.md"]
		}
		return strings.Compare(a, b)
	})
	return files
}

// startPlatform runs scripts/run.sh on a fresh run directory and waits until it says the platform is
// up; the returned function stops it the way Ctrl-C does and waits for it to finish.
func startPlatform(ctx context.Context, t *testing.T, root string) func() {
	t.Helper()
	runDir := t.TempDir()
	cmd := exec.Command("bash", "scripts/run.sh")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "BOURSE_RUN_DIR="+runDir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "run.out")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	up := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			fmt.Fprintln(logFile, sc.Text())
			if sc.Text() == "bourse is up." {
				close(up)
			}
		}
		exited <- cmd.Wait()
	}()
	stop := func() {
		_ = syscall.Kill(cmd.Process.Pid, syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(90 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			t.Errorf("make run did not stop within 90s of Ctrl-C")
		}
	}
	select {
	case <-up:
		return stop
	case err := <-exited:
		t.Fatalf("make run exited before the platform was up (%v):\n%s%s", err, readFile(logPath), serviceLogs(runDir))
	case <-ctx.Done():
		stop()
		t.Fatalf("make run was not up in time:\n%s%s", readFile(logPath), serviceLogs(runDir))
	}
	return nil
}

func serviceLogs(runDir string) string {
	logs, _ := filepath.Glob(filepath.Join(runDir, "*.log"))
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

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err.Error()
	}
	return string(b)
}

func indent(s string) string {
	if len(s) > 4000 {
		s = s[:4000] + "\n…"
	}
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
