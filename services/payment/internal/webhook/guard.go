package webhook

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"time"
)

// publicOnly refuses a connection to an address that is not on the public internet: loopback,
// private (RFC 1918, fc00::/7), link-local (169.254.0.0/16 holds cloud metadata services),
// unspecified or multicast. It runs on the address actually dialled, after DNS, so a name that
// resolves to an internal address is refused too: a customer's endpoint URL must not reach the
// exchange's own services.
func publicOnly(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return fmt.Errorf("webhook: %s is not an IP address", host)
	}
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return fmt.Errorf("webhook: %s is not a public address (deliveries to internal addresses are off; --webhook-allow-private-addresses turns them on)", ip)
	}
	return nil
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
