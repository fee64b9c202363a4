package testenv

import (
	"io"
	"net"
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
