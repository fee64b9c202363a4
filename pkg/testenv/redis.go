package testenv

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// StartRedis runs a private, non-persistent Redis server on a free loopback port for the test and
// returns its redis:// URL (retrying with a fresh port if another process takes the chosen one). The server comes from Debian's redis-server package, installed with
// apt-get when absent.
func StartRedis(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		aptInstall(t, "redis-server")
		if bin, err = exec.LookPath("redis-server"); err != nil {
			t.Fatalf("redis-server installed but not on PATH: %v", err)
		}
	}
	return withFreshPorts(t, "redis-server", func() (string, error) { return startRedis(t, bin) })
}

func startRedis(t testing.TB, bin string) (string, error) {
	dir := t.TempDir()
	port := pickPort(t)
	logPath := filepath.Join(dir, "redis.log")
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--protected-mode", "yes")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	exited := startBackground(t, cmd, logPath, syscall.SIGTERM)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(30 * time.Second)
	// The port may be another server's, one that took it first: only this server counts (it exits
	// when its bind fails).
	real, err := filepath.EvalSymlinks(dir) // redis reports the directory it changed into
	if err != nil {
		return "", err
	}
	for !redisServes(addr, real) {
		select {
		case <-exited:
			return "", exitError("redis-server", readFile(logPath))
		default:
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("redis-server not answering PING in 30s:\n%s", readFile(logPath))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "redis://" + addr + "/0", nil
}

// redisServes reports whether the server at addr answers and is the one working in dir: it asks
// with an inline CONFIG GET dir, answered by *2, $3, dir, $<n>, <dir>.
func redisServes(addr, dir string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("CONFIG GET dir\r\n")); err != nil {
		return false
	}
	r := bufio.NewReader(c)
	for range 5 {
		line, err := r.ReadString('\n')
		if err != nil {
			return false
		}
		if strings.TrimRight(line, "\r\n") == dir {
			return true
		}
	}
	return false
}
