package webhook

import "testing"

// CheckPublicHost refuses at creation every URL whose host is internal on its face, in any of the
// spellings a resolver reads as an internal address: IPv6 zones, IPv4-mapped IPv6, a trailing dot,
// upper case, and the numeric IPv4 forms inet_aton accepts (one number, octal and hex parts, fewer
// than four parts), which a C resolver turns into the address the dispatcher's guard would refuse
// at every delivery, and the full-width forms the HTTP client maps to ASCII (IDNA) before dialling. Public addresses in those forms and names that only start with digits pass.
func TestCheckPublicHostRefusesInternalHostsInEverySpelling(t *testing.T) {
	for _, raw := range []string{
		"http://localhost/", "http://LOCALHOST./", "http://a.localhost/", "https://localhost:8443/x",
		"http://127.0.0.1/", "http://127.0.0.1./", "http://[::1]/", "http://[::1%25lo]/", "http://[fe80::1%25eth0]:80/",
		"http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/", "http://10.1.2.3/", "http://169.254.169.254/",
		"http://2130706433/", "http://0x7f000001/", "http://017700000001/", "http://0x7f.1/", "http://0177.0.0.1/",
		"http://0X7F.0.0.1/", "http://127.1/", "http://127.0.1/", "http://0/", "http://0xa9fea9fe/", "http://10.0x10203/",
		"http://ｌｏｃａｌｈｏｓｔ/", "http://ＬＯＣＡＬＨＯＳＴ。/", "http://１２７.０.０.１/", "http://a.ｌｏｃａｌｈｏｓｔ:8080/",
	} {
		if err := CheckPublicHost(raw); err == nil {
			t.Errorf("%s: accepted, want refused as internal", raw)
		}
	}
	for _, raw := range []string{
		"https://example.com/hook", "http://93.184.216.34/", "http://16843009/", "http://0x1.0x1.0x1.0x1/",
		"http://1e100.net/", "http://123.example/", "http://0x7f.example/", "http://4294967296/", "http://1.2.3.4.5/",
		"http://08.1.2.3/", "http://bücher.example/",
	} {
		if err := CheckPublicHost(raw); err != nil {
			t.Errorf("%s: %v, want accepted", raw, err)
		}
	}
}
