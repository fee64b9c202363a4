// Package authtest holds the checks every service runs against its access policy: no method left
// unclassified, and the README's table equal to the policy.
package authtest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"

	"github.com/bourse-dev/bourse/pkg/auth"
)

// RequireClassified fails for every method of services that p leaves unclassified.
func RequireClassified(t testing.TB, p auth.Policy, services ...*grpc.ServiceDesc) {
	t.Helper()
	if len(services) == 0 {
		t.Fatal("no service descriptors given")
	}
	for _, m := range p.Unclassified(services...) {
		t.Errorf("%s is not in the access policy (it is refused to every caller): classify it", m)
	}
	known := map[string]bool{}
	for _, sd := range services {
		for _, m := range sd.Methods {
			known["/"+sd.ServiceName+"/"+m.MethodName] = true
		}
		for _, st := range sd.Streams {
			known["/"+sd.ServiceName+"/"+st.StreamName] = true
		}
	}
	for m := range p {
		if !known[m] {
			t.Errorf("policy names %s, which no service descriptor has", m)
		}
	}
}

// CheckReadme compares the README block between "<!-- access:name -->" and "<!-- /access:name -->"
// with p's table; with UPDATE=1 in the environment it rewrites the block instead (make docs).
func CheckReadme(t testing.TB, name string, p auth.Policy, services ...*grpc.ServiceDesc) {
	t.Helper()
	path := filepath.Join(repoRoot(t), "README.md")
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	begin, end := []byte("<!-- access:"+name+" -->\n"), []byte("<!-- /access:"+name+" -->")
	i, j := bytes.Index(readme, begin), bytes.Index(readme, end)
	if i < 0 || j < i {
		t.Fatalf("README.md has no block %s...%s", begin, end)
	}
	want := p.Table(services...)
	got := string(readme[i+len(begin) : j])
	if got == want {
		return
	}
	if os.Getenv("UPDATE") == "" {
		t.Fatalf("README.md's access table for %s differs from the policy; run make docs (UPDATE=1 go test -run %s)\nwant:\n%s\ngot:\n%s", name, t.Name(), want, got)
	}
	out := append(append(append([]byte{}, readme[:i+len(begin)]...), want...), readme[j:]...)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("rewrote the %s block of %s", name, path)
}

func repoRoot(t testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d
		}
		if filepath.Dir(d) == d || strings.TrimSpace(d) == "" {
			t.Fatalf("no go.work above %s", dir)
		}
	}
}
