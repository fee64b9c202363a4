package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// The binaries of a test process that has exited are removed by the next one that builds; those of
// a process still running, and this process's own, stay.
func TestRemoveOrphanBuilds(t *testing.T) {
	exited := exec.Command("true")
	if err := exited.Run(); err != nil {
		t.Fatal(err)
	}
	running := exec.Command("sleep", "60")
	if err := running.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { running.Process.Kill(); running.Wait() })
	dir := func(pid int) string { return filepath.Join(os.TempDir(), testbinPrefix+strconv.Itoa(pid)) }
	for _, pid := range []int{exited.Process.Pid, running.Process.Pid} {
		if err := os.MkdirAll(dir(pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir(pid), "payment"), []byte("binary"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { os.RemoveAll(dir(running.Process.Pid)) })
	removeOrphanBuilds()
	if _, err := os.Stat(dir(exited.Process.Pid)); !os.IsNotExist(err) {
		t.Fatalf("binaries of an exited process: %v, want removed", err)
	}
	if _, err := os.Stat(filepath.Join(dir(running.Process.Pid), "payment")); err != nil {
		t.Fatalf("binaries of a running process: %v, want kept", err)
	}
}
