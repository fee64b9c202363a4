package auth

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/bourse-dev/bourse/pkg/errs"
)

func TestKeyringAuthorize(t *testing.T) {
	hashed := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte("bob-secret")))
	k, err := ParseKeyring("root-key=admin:ops, alice-key=account:alice," + hashed + "=account:bob")
	if err != nil {
		t.Fatal(err)
	}
	policy := Policy{"/svc/Admin": AdminOnly, "/svc/Open": Public}
	cases := []struct {
		method, key string
		want        errs.Kind
		subject     string
	}{
		{"/svc/Read", "alice-key", -1, "alice"},
		{"/svc/Read", "bob-secret", -1, "bob"},
		{"/svc/Read", "", errs.KindUnauthenticated, ""},
		{"/svc/Read", "nope", errs.KindUnauthenticated, ""},
		{"/svc/Admin", "alice-key", errs.KindPermissionDenied, ""},
		{"/svc/Admin", "root-key", -1, "ops"},
		{"/svc/Open", "", -1, ""},
		{"/grpc.health.v1.Health/Check", "", -1, ""},
	}
	for _, c := range cases {
		id, err := k.Authorize(policy, c.method, c.key)
		if c.want == -1 {
			if err != nil || id.Subject != c.subject {
				t.Errorf("%s with %q: id=%+v err=%v, want subject %q", c.method, c.key, id, err, c.subject)
			}
			continue
		}
		if errs.KindOf(err) != c.want {
			t.Errorf("%s with %q: err=%v, want kind %v", c.method, c.key, err, c.want)
		}
	}
}

func TestParseKeyringRejectsBadEntries(t *testing.T) {
	for _, spec := range []string{"k", "k=root:x", "k=admin:", "=admin:x", "sha256:zz=admin:x", "k=account:bad subject"} {
		if _, err := ParseKeyring(spec); err == nil {
			t.Errorf("ParseKeyring(%q) accepted a bad entry", spec)
		}
	}
}

func TestRequireAccess(t *testing.T) {
	alice := WithIdentity(context.Background(), Identity{Role: RoleAccount, Subject: "alice"})
	admin := WithIdentity(context.Background(), Identity{Role: RoleAdmin, Subject: "ops"})
	if err := RequireAccess(alice, "alice"); err != nil {
		t.Errorf("alice on own account: %v", err)
	}
	if errs.KindOf(RequireAccess(alice, "bob")) != errs.KindPermissionDenied {
		t.Error("alice reached bob's account")
	}
	if err := RequireAccess(admin, "bob"); err != nil {
		t.Errorf("admin on bob: %v", err)
	}
	if errs.KindOf(RequireAccess(context.Background(), "bob")) != errs.KindUnauthenticated {
		t.Error("anonymous caller reached an account")
	}
}
