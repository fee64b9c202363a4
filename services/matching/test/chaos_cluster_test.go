package matching_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/bourse-dev/bourse/pkg/client"
	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// chaosProc is one service process of the chaos cluster. Every incarnation of a service appends to
// the same log file, so the tail printed on failure spans the crashes that led up to it.
type chaosProc struct {
	name     string
	grpcAddr string
	cmd      *exec.Cmd
	exited   chan struct{}
	exitErr  error
}

// chaosCluster is a Consul agent with one risk and one matching process that the chaos test kills
// with SIGKILL and restarts on the same data directories. It owns every process it starts and
// kills them all when the test ends. Its methods are called from the test goroutine only; the
// clients it hands out (current) are safe to use from the load goroutines.
type chaosCluster struct {
	t                    *testing.T
	agent                *testenv.ConsulAgent
	riskBin, matchingBin string
	dir                  string // data directories and logs, in t.TempDir()
	riskArgs, matchArgs  []string
	starts               map[string]int
	// where names the run and crash point in failures: the seed and crash number.
	where string

	risk, matching *chaosProc

	mu      sync.RWMutex
	clients chaosClients
	retired []*grpc.ClientConn // connections to dead incarnations, closed when no load runs
}

// chaosClients are admin clients of the current incarnations.
type chaosClients struct {
	risk     riskv1.RiskServiceClient
	matching matchingv1.MatchingServiceClient
	conns    []*grpc.ClientConn
}

func startChaosCluster(t *testing.T, where string) *chaosCluster {
	t.Helper()
	c := &chaosCluster{t: t, agent: testenv.StartConsul(t), dir: t.TempDir(), starts: map[string]int{}, where: where}
	c.riskBin = testenv.Build(t, riskPkg)
	c.matchingBin = testenv.Build(t, matchingPkg)
	common := []string{"--consul-addr=" + c.agent.Addr, "--api-keys=" + apiKeys, "--check-interval=1s", "--log-level=info"}
	// Risk snapshots (and prunes its log) every 200 events, so restarts restore snapshots too.
	c.riskArgs = append(append([]string{}, common...), "--data-dir="+filepath.Join(c.dir, "risk-data"), "--snapshot-every=200")
	// A short risk timeout makes timed-out checks (a reservation made, the answer lost) part of the
	// load; small snapshots make every restart exercise snapshot restore plus journal replay.
	c.matchArgs = append(append([]string{}, common...), "--risk-addr=consul:///risk", "--risk-api-key="+riskKey,
		"--data-dir="+filepath.Join(c.dir, "matching-data"), "--shards=2", "--snapshot-every=200", "--risk-timeout=2s")
	t.Cleanup(c.killAll)
	c.risk = c.start("risk", c.riskBin, c.riskArgs)
	c.waitRiskPassing()
	c.matching = c.start("matching", c.matchingBin, c.matchArgs)
	c.redial()
	return c
}

// start runs one incarnation of a service and waits for its ready file (written once it serves
// and is registered in Consul). Ports are bound by the service itself (port 0), never probed.
func (c *chaosCluster) start(name, bin string, args []string) *chaosProc {
	c.t.Helper()
	c.starts[name]++
	ready := filepath.Join(c.dir, name+".ready.json")
	_ = os.Remove(ready)
	logFile, err := os.OpenFile(c.logPath(name), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	fmt.Fprintf(logFile, "===== %s start %d at %s\n", name, c.starts[name], time.Now().UTC().Format(time.RFC3339Nano))
	args = append([]string{"--grpc-addr=127.0.0.1:0", "--metrics-addr=127.0.0.1:0", "--ready-file=" + ready}, args...)
	p := &chaosProc{name: name, cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	// If the test process itself dies without its cleanup, the kernel kills the service too, so
	// hundreds of restarts never leave orphans behind.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		logFile.Close()
		c.t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.exitErr = p.cmd.Wait(); logFile.Close(); close(p.exited) }()

	deadline := time.Now().Add(90 * time.Second) // replaying a long journal on a busy machine
	for {
		if b, err := os.ReadFile(ready); err == nil {
			var r struct {
				GRPCAddr string `json:"grpc_addr"`
			}
			if err := json.Unmarshal(b, &r); err != nil {
				c.t.Fatalf("%s ready file: %v", name, err)
			}
			p.grpcAddr = r.GRPCAddr
			return p
		}
		select {
		case <-p.exited:
			c.t.Fatalf("%s: %s (start %d) exited before serving (%v); last lines of its log:\n%s", c.where, name, c.starts[name], p.exitErr, c.tail(name, 60))
		default:
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: %s (start %d) not serving after 90s; last lines of its log:\n%s", c.where, name, c.starts[name], c.tail(name, 60))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *chaosCluster) logPath(name string) string { return filepath.Join(c.dir, name+".log") }

// tail returns the last n lines of a service's log.
func (c *chaosCluster) tail(name string, n int) string {
	b, _ := os.ReadFile(c.logPath(name))
	var lines []string
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		// One line per RPC at info level would bury the restarts and errors.
		if strings.Contains(line, " msg=rpc ") && strings.Contains(line, "level=INFO") {
			continue
		}
		lines = append(lines, line)
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logTails is what a failure prints: the first errors and warnings of both services (the cause
// often scrolls out of the tail) and the end of their logs.
func (c *chaosCluster) logTails() string {
	var b strings.Builder
	for _, name := range []string{"risk", "matching"} {
		fmt.Fprintf(&b, "--- %s: first errors and warnings in %s\n%s\n", name, c.logPath(name), c.problems(name, 20))
		fmt.Fprintf(&b, "--- %s: last errors\n%s\n", name, c.lastErrors(name, 10))
	}
	for _, name := range []string{"risk", "matching"} {
		fmt.Fprintf(&b, "--- %s: last 40 lines\n%s\n", name, c.tail(name, 40))
	}
	return strings.TrimRight(b.String(), "\n")
}

// problems returns the first n error and warning lines of a service's log, across incarnations.
func (c *chaosCluster) problems(name string, n int) string {
	b, _ := os.ReadFile(c.logPath(name))
	var lines []string
	for _, line := range strings.Split(string(b), "\n") {
		if len(lines) < n && !strings.Contains(line, " msg=rpc ") && (strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN")) {
			lines = append(lines, line)
		}
	}
	if len(lines) == 0 {
		return "(none)"
	}
	return strings.Join(lines, "\n")
}

// lastErrors returns the last n error lines of a service's log, each after the start banner of its
// incarnation: a halt's cause is an error that the warnings of later restarts push out of the tail.
func (c *chaosCluster) lastErrors(name string, n int) string {
	b, _ := os.ReadFile(c.logPath(name))
	var lines []string
	banner := ""
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "===== "):
			banner = line
		case strings.Contains(line, "level=ERROR"):
			if banner != "" {
				lines, banner = append(lines, banner), ""
			}
			lines = append(lines, line)
		}
	}
	if len(lines) == 0 {
		return "(none)"
	}
	if len(lines) > 2*n {
		lines = lines[len(lines)-2*n:]
	}
	return strings.Join(lines, "\n")
}

// kill sends SIGKILL and waits until the process is gone.
func (c *chaosCluster) kill(p *chaosProc) {
	c.t.Helper()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		c.t.Fatalf("%s did not exit after SIGKILL", p.name)
	}
}

func (c *chaosCluster) killAll() {
	for _, p := range []*chaosProc{c.matching, c.risk} {
		if p != nil {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range append(c.retired, c.clients.conns...) {
		conn.Close()
	}
	c.retired, c.clients.conns = nil, nil
}

// crashKind is what one crash point kills.
type crashKind int

const (
	crashMatching crashKind = iota
	crashRisk
	crashBoth
)

func (k crashKind) String() string {
	return [...]string{"matching", "risk", "matching+risk"}[k]
}

// crash kills what kind names with SIGKILL (both in the order given by riskFirst), restarts it on
// the same data directory (risk before matching, as an operator would) and waits until both serve.
func (c *chaosCluster) crash(kind crashKind, riskFirst bool) {
	c.t.Helper()
	switch kind {
	case crashMatching:
		c.kill(c.matching)
	case crashRisk:
		c.kill(c.risk)
	case crashBoth:
		if riskFirst {
			c.kill(c.risk)
			c.kill(c.matching)
		} else {
			c.kill(c.matching)
			c.kill(c.risk)
		}
	}
	if kind != crashMatching {
		c.risk = c.start("risk", c.riskBin, c.riskArgs)
		c.waitRiskPassing()
	}
	if kind != crashRisk {
		c.matching = c.start("matching", c.matchingBin, c.matchArgs)
	}
	c.redial()
	c.waitServing()
}

// waitRiskPassing waits until Consul sees the current risk incarnation passing, so that matching's
// resolver can find it.
func (c *chaosCluster) waitRiskPassing() {
	c.t.Helper()
	c.waitFor(60*time.Second, "risk passing in consul", func() bool {
		port := c.risk.grpcAddr[strings.LastIndex(c.risk.grpcAddr, ":")+1:]
		for _, id := range c.agent.Passing(c.t, "risk") {
			if strings.HasSuffix(id, "-"+port) {
				return true
			}
		}
		return false
	})
}

// redial points the clients at the current incarnations. Connections to dead ones are retired, not
// closed, because load goroutines may still be using them (they see Unavailable and come back here).
func (c *chaosCluster) redial() {
	c.t.Helper()
	rc, err := dialChaos(c.risk.grpcAddr)
	if err != nil {
		c.t.Fatal(err)
	}
	mc, err := dialChaos(c.matching.grpcAddr)
	if err != nil {
		rc.Close()
		c.t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.retired = append(c.retired, c.clients.conns...)
	c.clients = chaosClients{risk: riskv1.NewRiskServiceClient(rc), matching: matchingv1.NewMatchingServiceClient(mc),
		conns: []*grpc.ClientConn{rc, mc}}
}

func dialChaos(addr string) (*grpc.ClientConn, error) {
	conn, err := client.Dial(addr, client.Options{APIKey: adminKey})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return conn, nil
}

// current returns the clients of the live incarnations.
func (c *chaosCluster) current() chaosClients {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.clients
}

// closeRetired closes connections to dead incarnations; call it only while no load runs.
func (c *chaosCluster) closeRetired() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.retired {
		conn.Close()
	}
	c.retired = nil
}

// waitServing waits until both services answer reads at their new addresses.
func (c *chaosCluster) waitServing() {
	c.t.Helper()
	cl := c.current()
	c.waitFor(60*time.Second, "risk and matching serving", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := cl.risk.GetAccount(ctx, &riskv1.GetAccountRequest{AccountId: feeAccount}); err != nil {
			return false
		}
		_, err := cl.matching.ListSymbols(ctx, &matchingv1.ListSymbolsRequest{})
		return err == nil
	})
}

// waitFor polls cond until it holds; on timeout it fails with the crash point and the logs.
func (c *chaosCluster) waitFor(timeout time.Duration, what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: timed out after %v waiting for %s\n%s", c.where, timeout, what, c.logTails())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
