package auth

import (
	"strings"
	"testing"
)

// FuzzParseKeyring: any spec either fails with an error or yields a keyring in which every plain key
// it names resolves to the role and subject written next to it (keys are never named twice).
func FuzzParseKeyring(f *testing.F) {
	f.Add("dev-admin=admin:ops,dev-alice=account:alice")
	f.Add("sha256:00=admin:x")
	f.Add(",,k=account:a.b-c_d,")
	f.Add("k==admin:x")
	f.Add("k=admin:x,k=service:y")
	f.Fuzz(func(t *testing.T, spec string) {
		k, err := ParseKeyring(spec)
		if err != nil {
			return
		}
		for item := range strings.SplitSeq(spec, ",") {
			item = strings.TrimSpace(item)
			key, rest, ok := strings.Cut(item, "=")
			if !ok || strings.HasPrefix(key, "sha256:") {
				continue
			}
			role, subject, _ := strings.Cut(strings.TrimSpace(rest), ":")
			id, found := k.Lookup(strings.TrimSpace(key))
			if !found {
				t.Fatalf("key %q of accepted spec %q not found", key, spec)
			}
			if role != id.Role.String() || subject != id.Subject {
				t.Fatalf("key %q resolved to %v, spec %q says %s:%s", key, id, spec, role, subject)
			}
		}
	})
}
