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
// returns its redis:// URL. The server comes from Debian's redis-server package, installed with
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
	dir := t.TempDir()
	port := FreePort(t)
	logPath := filepath.Join(dir, "redis.log")
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--protected-mode", "yes")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	exited := startBackground(t, cmd, logPath, syscall.SIGTERM)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(30 * time.Second)
	for !redisPong(addr) {
		select {
		case <-exited:
			t.Fatalf("redis-server exited during start:\n%s", readFile(logPath))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server not answering PING in 30s:\n%s", readFile(logPath))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "redis://" + addr + "/0"
}

// redisPong sends an inline PING and reports whether +PONG came back.
func redisPong(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}
