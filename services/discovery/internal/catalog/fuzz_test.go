package catalog

import (
	"net"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/consul"
	"github.com/bourse-dev/bourse/pkg/errs"
)

// FuzzValidation: validation never panics, rejects with an InvalidArgument naming a field, and what it
// accepts satisfies the rules Consul and DNS impose.
func FuzzValidation(f *testing.F) {
	f.Add("risk", "127.0.0.1", uint32(7002), "v2", "zone", "eu", int64(time.Second), "")
	f.Add("", "", uint32(0), "", "", "", int64(0), "http://x")
	f.Add("a-b", "host.example", uint32(65535), "t a", "consul-x", "v", int64(-1), "ftp://")
	f.Fuzz(func(t *testing.T, name, addr string, port uint32, tag, metaKey, metaVal string, interval int64, target string) {
		check := consul.Check{Kind: consul.CheckKind(port % 5), Target: target, Interval: time.Duration(interval)}
		for _, err := range []error{
			validateName("name", name), validateAddress(addr), validatePort(port), validateTags([]string{tag}),
			validateMeta(map[string]string{metaKey: metaVal}), validateCheck(&check),
		} {
			if err == nil {
				continue
			}
			e, ok := err.(*errs.Error)
			if !ok || e.Kind != errs.KindInvalidArgument || e.Field == "" {
				t.Fatalf("error %v is not an InvalidArgument naming a field", err)
			}
		}
		if validateName("name", name) == nil && (len(name) == 0 || len(name) > 63) {
			t.Fatalf("accepted name %q", name)
		}
		if validatePort(port) == nil && (port == 0 || port > 65535) {
			t.Fatalf("accepted port %d", port)
		}
		if validateAddress(addr) == nil {
			if ip := net.ParseIP(addr); ip == nil && (len(addr) > 253 || addr == "") {
				t.Fatalf("accepted address %q", addr)
			}
		}
		if validateCheck(&check) == nil && (check.Interval < minInterval || check.Timeout > check.Interval || check.DeregisterAfter < minDeregister) {
			t.Fatalf("accepted check %+v", check)
		}
	})
}
