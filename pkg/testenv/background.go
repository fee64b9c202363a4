package testenv

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// startBackground starts cmd with its output in logPath and stops it when the test ends: stop
// first, then SIGKILL after 10s; it also dies with the test binary. The returned channel closes when the process has exited.
func startBackground(t testing.TB, cmd *exec.Cmd, logPath string, stop os.Signal) <-chan struct{} {
	t.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if cmd.SysProcAttr == nil {
		// As StartService's: a test binary that dies runs no cleanup, so the kernel ends the process.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logFile.Close(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(stop)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	return exited
}
