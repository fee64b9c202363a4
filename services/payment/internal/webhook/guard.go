package webhook

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// publicOnly refuses a connection to an address that is not on the public internet. It runs on the
// address actually dialled, after DNS, so a name that resolves to an internal address is refused
// too: a customer's endpoint URL must not reach the exchange's own services.
func publicOnly(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("webhook: %s is not an IP address", host)
	}
	if !public(ip) {
		return fmt.Errorf("webhook: %s is not a public address (deliveries to internal addresses are off; --webhook-allow-private-addresses turns them on)", ip)
	}
	return nil
}

// notPublic are the special-purpose ranges (IANA's registries) a delivery must not reach, beyond
// what netip's predicates name: the cloud metadata services live in some of them (169.254.169.254,
// Alibaba's 100.100.100.200 in the shared address space, fd00:ec2::254 in the unique-local range).
var notPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network": 0.x reaches the local host on Linux
	netip.MustParsePrefix("100.64.0.0/10"),   // shared address space (carrier-grade NAT, cloud internals)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and the broadcast address
	netip.MustParsePrefix("::/96"),           // IPv4-compatible (deprecated), with :: and ::1
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001::/32"),       // Teredo: an IPv4 address hidden inside
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated)
}

// Ranges that carry an IPv4 address to a gateway, which then connects to it: the embedded address is
// the one that must be public.
var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")   // the well-known NAT64 prefix
	nat64Loc  = netip.MustParsePrefix("64:ff9b:1::/48") // local-use NAT64: the operator's own
	sixToFour = netip.MustParsePrefix("2002::/16")      // 6to4: 2002:<IPv4>::/48
)

// public reports whether ip is an address on the public internet.
func public(ip netip.Addr) bool {
	ip = ip.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	if !ip.IsGlobalUnicast() || ip.IsPrivate() || ip.IsLoopback() {
		return false // loopback, link-local, multicast, unspecified, broadcast; RFC 1918, fc00::/7
	}
	for _, p := range notPublic {
		if p.Contains(ip) {
			return false
		}
	}
	if nat64Loc.Contains(ip) {
		return false
	}
	if nat64.Contains(ip) {
		b := ip.As16()
		return public(netip.AddrFrom4([4]byte(b[12:])))
	}
	if sixToFour.Contains(ip) {
		b := ip.As16()
		return public(netip.AddrFrom4([4]byte(b[2:6])))
	}
	return true
}

// maxResponseHeader bounds the header block of a receiver's answer.
const maxResponseHeader = 64 << 10

// newClient is the dispatcher's own HTTP client: public addresses only unless allowPrivate.
func newClient(allowPrivate bool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if !allowPrivate {
		d.Control = publicOnly
	}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}
	tr.Proxy = nil // a proxy would dial the internal address on the dispatcher's behalf
	// The transport's own default is 10 MiB of headers per answer, per worker; a receiver needs a
	// few hundred bytes to say 2xx.
	tr.MaxResponseHeaderBytes = maxResponseHeader
	return &http.Client{Transport: tr}
}
