package webhook

import (
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The guard runs on the address dialled. Every internal or special-purpose address is refused, in
// every spelling (IPv4-mapped, or embedded in an IPv6 transition address that a gateway would connect
// to); public addresses pass.
func TestGuardRefusesEveryInternalAddress(t *testing.T) {
	internal := []string{
		"127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.0.1", "192.168.1.1",
		"169.254.169.254", // the cloud metadata service
		"100.100.100.200", // Alibaba's metadata service, in the shared address space
		"100.64.0.1", "0.0.0.0", "0.1.2.3", "192.0.0.192", "198.18.0.1", "240.0.0.1",
		"255.255.255.255", "224.0.0.1", "192.0.2.1",
		"::1", "::", "fd00:ec2::254", "fe80::1", "ff02::1", "fec0::1", "100::1",
		"::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1", "::127.0.0.1",
		"64:ff9b::a9fe:a9fe",  // NAT64 of 169.254.169.254
		"64:ff9b::7f00:1",     // NAT64 of 127.0.0.1
		"64:ff9b:1::808:808",  // local-use NAT64: the operator's own network
		"2002:7f00:1::1",      // 6to4 of 127.0.0.1
		"2002:a9fe:a9fe::1",   // 6to4 of 169.254.169.254
		"2001:0:4136:e378::1", // Teredo
	}
	for _, a := range internal {
		err := publicOnly("tcp", net.JoinHostPort(a, "443"), nil)
		if err == nil || !strings.Contains(err.Error(), "not a public address") {
			t.Errorf("%s: %v, want refused as not public", a, err)
		}
	}
	for _, a := range []string{"8.8.8.8", "1.1.1.1", "93.184.216.34", "100.128.0.1", "2606:4700::1111",
		"2a00:1450:4001:80b::200e", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"} {
		if err := publicOnly("tcp", net.JoinHostPort(a, "443"), nil); err != nil {
			t.Errorf("%s: %v, want allowed", a, err)
		}
	}
	if err := publicOnly("tcp", "example.com:443", nil); err == nil {
		t.Error("a name reached the guard and passed: it must see addresses only")
	}
}

// The guard sees the address after DNS: a name that resolves to loopback is refused like the literal
// address, and the receiver behind it gets nothing.
func TestGuardAppliesAfterNameResolution(t *testing.T) {
	rc := newReceiver(t, "s")
	srv := httptest.NewServer(rc)
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	st := newMemStore()
	addEvents(st, 1, Endpoint{ID: "we_l", URL: "http://localhost:" + port + "/hook", Secrets: []string{"s"}}, "l")
	d, stop := startAsIs(t, st, Config{PollInterval: 5 * time.Millisecond, InitialBackoff: time.Hour})
	d.Kick()
	eventually(t, 30*time.Second, "one attempt", func() bool { _, log := st.snapshot(); return len(log) == 1 })
	stop()
	_, log := st.snapshot()
	if log[0].Outcome != Failed || !strings.Contains(log[0].Error, "not a public address") {
		t.Fatalf("attempt %+v: want failed, refused as not public", log[0])
	}
	if n, _, _ := rc.count(); n != 0 {
		t.Fatalf("the receiver behind localhost got %d requests", n)
	}
}
