package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Network is a private IPv4 /24 on this machine: a bridge in the root network namespace holding
// the .1 address, and one network namespace per host, each joined to the bridge by a veth pair and
// holding an address of its own. Processes in a namespace see only its loopback and its address, so
// a service there cannot reach 127.0.0.1 of the root namespace: what it reaches, it reaches by the
// address it was given, as across machines. Everything is removed when the test ends.
type Network struct {
	// Gateway is the bridge's address in the root namespace: bind what the hosts must reach to it.
	Gateway string
	Hosts   []*Host
	bridge  string
}

// Host is one network namespace of a Network.
type Host struct {
	Name string // the namespace, for `ip netns exec`
	Addr string // its address on the bridge
	// HostLink is the root-namespace end of its veth pair (a bridge port), where a qdisc delays
	// what is sent to the host.
	HostLink string
}

// NewNetwork creates a Network of n hosts with names unique to this run. It needs root and
// iproute2 (installed from Debian packages when missing); without them the test fails, never
// skips.
func NewNetwork(t testing.TB, n int) *Network {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("testenv: network namespaces need root (ip netns, veth, bridge)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		aptInstall(t, "iproute2")
	}
	if _, err := exec.LookPath("tc"); err != nil {
		aptInstall(t, "iproute2")
	}
	// One test process at a time picks a subnet and claims it on its bridge, so two never pick the
	// same; the sweep runs under the same lock.
	unlock := lockFile(t, filepath.Join(os.TempDir(), "bourse-netns.lock"))
	sweepNetworks(t)
	id := randomHex(t, 3)
	nw := &Network{bridge: "bt" + id}
	subnet := freeSubnet(t)
	nw.Gateway = subnet + ".1"
	// Registered first, so it runs last: after the processes started in the namespaces stopped.
	t.Cleanup(func() {
		for _, h := range nw.Hosts {
			// A namespace is torn down asynchronously once unmounted; deleting its veth pair
			// first removes both ends now.
			_, _ = run("ip", "link", "del", h.HostLink)
			_, _ = run("ip", "netns", "del", h.Name)
		}
		_, _ = run("ip", "link", "del", nw.bridge)
	})
	must(t, "ip", "link", "add", nw.bridge, "type", "bridge")
	// The owner's pid, so that a later run can remove what a killed test process left behind.
	owner := fmt.Sprintf("bourse-%d", os.Getpid())
	must(t, "ip", "link", "set", "dev", nw.bridge, "alias", owner)
	must(t, "ip", "addr", "add", nw.Gateway+"/24", "dev", nw.bridge)
	must(t, "ip", "link", "set", nw.bridge, "up")
	unlock()
	for i := range n {
		h := &Host{Name: fmt.Sprintf("%s-%s-h%d", owner, id, i+1), Addr: fmt.Sprintf("%s.%d", subnet, 10+i+1),
			HostLink: fmt.Sprintf("bt%sv%d", id, i+1)}
		peer := fmt.Sprintf("bt%sp%d", id, i+1)
		must(t, "ip", "netns", "add", h.Name)
		nw.Hosts = append(nw.Hosts, h)
		must(t, "ip", "link", "add", h.HostLink, "type", "veth", "peer", "name", peer)
		must(t, "ip", "link", "set", h.HostLink, "master", nw.bridge)
		must(t, "ip", "link", "set", h.HostLink, "up")
		must(t, "ip", "link", "set", peer, "netns", h.Name)
		in := func(args ...string) { must(t, append([]string{"ip", "netns", "exec", h.Name}, args...)...) }
		in("ip", "link", "set", "lo", "up")
		in("ip", "link", "set", peer, "name", "eth0")
		in("ip", "addr", "add", h.Addr+"/24", "dev", "eth0")
		in("ip", "link", "set", "eth0", "up")
	}
	nw.waitConnected(t)
	return nw
}

var (
	staleNetns  = regexp.MustCompile(`^bourse-(\d+)-[0-9a-f]{6}-h\d+$`)
	staleBridge = regexp.MustCompile(`^\d+: (bt[0-9a-f]{6}):.* alias bourse-(\d+)`)
)

// sweepNetworks removes the namespaces and bridges of test processes that died without their
// cleanup (SIGKILL, a timeout): their names carry the owner's pid.
func sweepNetworks(t testing.TB) {
	t.Helper()
	dead := func(pid string) bool {
		n, err := strconv.Atoi(pid)
		return err == nil && n > 0 && syscall.Kill(n, 0) == syscall.ESRCH
	}
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if m := staleNetns.FindStringSubmatch(e.Name()); m != nil && dead(m[1]) {
			if out, err := run("ip", "netns", "del", e.Name()); err != nil {
				t.Logf("testenv: stale namespace %s: %v: %s", e.Name(), err, out)
			}
		}
	}
	out, _ := run("ip", "-o", "link", "show", "type", "bridge")
	for _, line := range strings.Split(out, "\n") {
		if m := staleBridge.FindStringSubmatch(line); m != nil && dead(m[2]) {
			if out, err := run("ip", "link", "del", m[1]); err != nil {
				t.Logf("testenv: stale bridge %s: %v: %s", m[1], err, out)
			}
		}
	}
}

// waitConnected waits until every host reaches the gateway over TCP: a bridge forwards only once
// its ports have come up.
func (nw *Network) waitConnected(t testing.TB) {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(nw.Gateway, "0"))
	if err != nil {
		t.Fatalf("testenv: listen on the bridge: %v", err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	for _, h := range nw.Hosts {
		WaitFor(t, 10*time.Second, h.Name+" reaching "+l.Addr().String(), func() bool {
			c, err := h.Dial(l.Addr().String(), time.Second)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
	}
}

// Netem sets a netem delay on every host's link, so each packet to a host waits delay: a one-way
// latency of delay between any two hosts. It reports false, with tc's answer, when the kernel has
// no netem qdisc (some virtual machines' kernels are built without it).
func (nw *Network) Netem(t testing.TB, delay time.Duration) (bool, string) {
	t.Helper()
	for i, h := range nw.Hosts {
		out, err := run("tc", "qdisc", "replace", "dev", h.HostLink, "root", "netem", "delay", delay.String())
		if err != nil {
			if i == 0 && strings.Contains(out, "qdisc kind is unknown") {
				return false, strings.TrimSpace(out)
			}
			t.Fatalf("tc qdisc on %s: %v: %s", h.HostLink, err, out)
		}
	}
	return true, ""
}

// Wrap returns an executable that runs bin inside the host's namespace with the arguments it is
// given (for StartService). `ip netns exec` execs bin in place, so signals reach bin itself.
func (h *Host) Wrap(t testing.TB, bin string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), filepath.Base(bin)+"-in-"+h.Name)
	script := fmt.Sprintf("#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n", h.Name, bin)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// Listen opens a TCP listener inside the host's namespace (a socket keeps the namespace it was
// created in), for a test that serves or relays there from its own process.
func (h *Host) Listen(addr string) (net.Listener, error) {
	var l net.Listener
	err := h.do(func() (err error) { l, err = net.Listen("tcp", addr); return err })
	return l, err
}

// Dial connects from inside the host's namespace.
func (h *Host) Dial(addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := h.do(func() (err error) { c, err = net.DialTimeout("tcp", addr, timeout); return err })
	return c, err
}

// do runs f on an OS thread switched into the host's namespace, then switches the thread back. A
// thread that cannot be switched back is never handed back to the scheduler: it exits with the
// goroutine.
func (h *Host) do(f func() error) error {
	target, err := os.Open(filepath.Join("/run/netns", h.Name))
	if err != nil {
		return err
	}
	defer target.Close()
	runtime.LockOSThread()
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer self.Close()
	if err := setns(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns %s: %w", h.Name, err)
	}
	ferr := f()
	if err := setns(self); err != nil {
		return fmt.Errorf("setns back from %s: %w", h.Name, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

func setns(f *os.File) error {
	return unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
}

// lockFile takes an exclusive lock on path and returns its release (also run at cleanup, should
// the test fail while holding it).
func lockFile(t testing.TB, path string) func() {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatal(err)
	}
	var once sync.Once
	release := func() { once.Do(func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }) }
	t.Cleanup(release)
	return release
}

// freeSubnet picks a 10.213.x.0/24 that no interface of the root namespace is in.
func freeSubnet(t testing.TB) string {
	t.Helper()
	out, err := run("ip", "-4", "-o", "addr", "show")
	if err != nil {
		t.Fatalf("ip addr: %v: %s", err, out)
	}
	for range 100 {
		b := randomHex(t, 1)
		var x int
		fmt.Sscanf(b, "%x", &x)
		if x == 0 || x == 255 {
			continue
		}
		subnet := fmt.Sprintf("10.213.%d", x)
		if !strings.Contains(out, " "+subnet+".") {
			return subnet
		}
	}
	t.Fatal("testenv: no free 10.213.x.0/24")
	return ""
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

func must(t testing.TB, args ...string) {
	t.Helper()
	if out, err := run(args[0], args[1:]...); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}
