package testenv

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Two hosts reach each other and the gateway by their addresses, and do not see the root
// namespace's loopback; the namespaces and the bridge are gone once the test ends.
func TestNetworkIsolatesHostsAndJoinsThemByAddress(t *testing.T) {
	var nw *Network
	t.Run("network", func(t *testing.T) {
		nw = NewNetwork(t, 2)
		a, b := nw.Hosts[0], nw.Hosts[1]
		l, err := a.Listen(net.JoinHostPort(a.Addr, "0"))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				_, _ = io.WriteString(c, c.RemoteAddr().(*net.TCPAddr).IP.String())
				c.Close()
			}
		}()
		c, err := b.Dial(l.Addr().String(), 2*time.Second)
		if err != nil {
			t.Fatalf("%s cannot reach %s: %v", b.Name, l.Addr(), err)
		}
		seen, _ := io.ReadAll(c)
		c.Close()
		if string(seen) != b.Addr {
			t.Fatalf("%s saw the connection come from %q, want %s", a.Name, seen, b.Addr)
		}
		lo, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer lo.Close()
		if c, err := b.Dial(lo.Addr().String(), time.Second); err == nil {
			c.Close()
			t.Fatalf("%s reached the root namespace's loopback %s", b.Name, lo.Addr())
		}
	})
	for _, h := range nw.Hosts {
		if out, err := run("ip", "netns", "exec", h.Name, "true"); err == nil {
			t.Fatalf("namespace %s left behind: %s", h.Name, out)
		}
		if _, err := run("ip", "link", "show", h.HostLink); err == nil {
			t.Fatalf("link %s left behind", h.HostLink)
		}
	}
	if _, err := run("ip", "link", "show", nw.bridge); err == nil {
		t.Fatalf("bridge %s left behind", nw.bridge)
	}
}

// What a killed test process left behind (its pid is in the names) is removed by the next
// NewNetwork; a live process's network is left alone.
func TestNewNetworkSweepsWhatDeadProcessesLeft(t *testing.T) {
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	pid := gone.Process.Pid
	stale := fmt.Sprintf("bourse-%d-abcdef-h1", pid)
	bridge := "bt" + randomHex(t, 3)
	t.Cleanup(func() { _, _ = run("ip", "netns", "del", stale); _, _ = run("ip", "link", "del", bridge) })
	must(t, "ip", "netns", "add", stale)
	must(t, "ip", "link", "add", bridge, "type", "bridge")
	must(t, "ip", "link", "set", "dev", bridge, "alias", fmt.Sprintf("bourse-%d", pid))
	live := NewNetwork(t, 1)
	if _, err := os.Stat("/run/netns/" + stale); err == nil {
		t.Fatalf("stale namespace %s of dead pid %d is still there", stale, pid)
	}
	if _, err := run("ip", "link", "show", bridge); err == nil {
		t.Fatalf("stale bridge %s of dead pid %d is still there", bridge, pid)
	}
	NewNetwork(t, 1) // a second network: the live first one must survive its sweep
	if _, err := os.Stat("/run/netns/" + live.Hosts[0].Name); err != nil {
		t.Fatalf("the live network's namespace was swept: %v", err)
	}
	if _, err := run("ip", "link", "show", live.bridge); err != nil {
		t.Fatalf("the live network's bridge was swept: %v", err)
	}
}
