package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
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

// FuzzParseKeyFile: a key file either fails or every plain key on a line resolves to the identity
// written next to it; a key appearing on two lines always fails.
func FuzzParseKeyFile(f *testing.F) {
	f.Add("# risk\nm=service:matching\n\na=account:alice\r\n")
	f.Add("k=admin:x\nk=service:y\n")
	f.Add("sha256:" + strings.Repeat("ab", 32) + "=account:z\n")
	f.Fuzz(func(t *testing.T, content string) {
		k, err := ParseKeyFile(content)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for line := range strings.SplitSeq(content, "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			key, rest, _ := strings.Cut(line, "=")
			key = strings.TrimSpace(key)
			if seen[key] {
				t.Fatalf("key %q on two lines of an accepted file %q", key, content)
			}
			seen[key] = true
			if strings.HasPrefix(key, "sha256:") {
				continue
			}
			role, subject, _ := strings.Cut(strings.TrimSpace(rest), ":")
			id, ok := k.Lookup(key)
			if !ok || id.Role.String() != role || id.Subject != subject {
				t.Fatalf("key %q resolved to %v %v; the file says %s:%s", key, id, ok, role, subject)
			}
		}
	})
}

// BenchmarkLookup: a keyring of 1,000 keys, looked up by digest, against the constant-time scan
// of every entry it replaced.
func BenchmarkLookup(b *testing.B) {
	var spec strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&spec, "key-%d=account:a%d,", i, i)
	}
	k, err := ParseKeyring(spec.String())
	if err != nil {
		b.Fatal(err)
	}
	b.Run("map", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := k.Lookup("key-500"); !ok {
				b.Fatal("not found")
			}
		}
	})
	b.Run("constant-time-scan(before)", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			d := sha256.Sum256([]byte("key-500"))
			ok := false
			for _, e := range k.entries {
				if subtle.ConstantTimeCompare(d[:], e.digest[:]) == 1 {
					ok = true
				}
			}
			if !ok {
				b.Fatal("not found")
			}
		}
	})
}
