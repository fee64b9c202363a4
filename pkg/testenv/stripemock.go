package testenv

import (
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// StripeMock is a running stripe-mock (Stripe's API mock, answering from its embedded OpenAPI spec
// and fixtures, so it needs no network) on loopback.
type StripeMock struct {
	URL  string // http://127.0.0.1:<port>, the base URL a Stripe client is configured with
	Addr string // 127.0.0.1:<port>
}

// stripeMockListening is the line stripe-mock prints once its HTTP listener is bound, with the
// address it got.
var stripeMockListening = regexp.MustCompile(`Listening for HTTP at address: (127\.0\.0\.1:[0-9]+)`)

// StartStripeMock runs ./bin/stripe-mock for the test and stops it when the test ends.
//
// Unlike Consul or Redis, stripe-mock binds port 0 and prints the port it got, so no other process
// can take its port between choosing and binding: there is nothing to retry. Both listeners are
// given explicitly: with only -http-addr, stripe-mock v0.203.0 still opens HTTPS on 0.0.0.0:12112.
func StartStripeMock(t testing.TB) *StripeMock {
	t.Helper()
	bin := Tool(t, "stripe-mock")
	dir := t.TempDir()
	logPath := filepath.Join(dir, "stripe-mock.log")
	cmd := exec.Command(bin, "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	exited := startBackground(t, cmd, logPath, syscall.SIGTERM)
	probe := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := stripeMockListening.FindStringSubmatch(readFile(logPath)); m != nil {
			sm := &StripeMock{Addr: m[1], URL: "http://" + m[1]}
			if err := stripeMockServes(probe, sm.URL); err == nil {
				return sm
			} else if time.Now().After(deadline) {
				t.Fatalf("testenv: stripe-mock at %s does not answer: %v\n%s", sm.Addr, err, readFile(logPath))
			}
		}
		if hasExited(exited) {
			t.Fatalf("testenv: %v", exitError("stripe-mock", readFile(logPath)))
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: stripe-mock not listening in 30s:\n%s", readFile(logPath))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stripeMockServes asks for the balance, which needs a test key, and checks that stripe-mock (not
// some other server) answered.
func stripeMockServes(c *http.Client, base string) error {
	req, err := http.NewRequest(http.MethodGet, base+"/v1/balance", nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth("sk_test_testenv", "")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Stripe-Mock-Version") == "" {
		return fmt.Errorf("GET /v1/balance: %s, Stripe-Mock-Version %q", resp.Status, resp.Header.Get("Stripe-Mock-Version"))
	}
	return nil
}
