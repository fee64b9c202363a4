package auth

import (
	"strings"
	"testing"
)

// FuzzParseKeyring: any spec either fails with an error or yields a keyring in which every plain key
// it names resolves to the role and subject written next to it.
func FuzzParseKeyring(f *testing.F) {
	f.Add("dev-admin=admin:ops,dev-alice=account:alice")
	f.Add("sha256:00=admin:x")
	f.Add(",,k=account:a.b-c_d,")
	f.Add("k==admin:x")
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
			role, subject, _ := strings.Cut(rest, ":")
			id, found := k.Lookup(key)
			if !found {
				t.Fatalf("key %q of accepted spec %q not found", key, spec)
			}
			// A later duplicate key wins, so only check that the identity is one the spec names.
			if !strings.Contains(spec, key+"="+id.Role.String()+":"+id.Subject) && !(role == id.Role.String() && subject == id.Subject) {
				t.Fatalf("key %q resolved to %+v, not named in %q", key, id, spec)
			}
		}
	})
}
