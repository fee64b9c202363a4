package auth

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"

	"github.com/bourse-dev/bourse/pkg/errs"
)

func TestKeyringAuthorize(t *testing.T) {
	hashed := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte("bob-secret")))
	k, err := ParseKeyring("root-key=admin:ops, alice-key=account:alice," + hashed + "=account:bob,m-key=service:matching,p-key=service:payment")
	if err != nil {
		t.Fatal(err)
	}
	policy := Policy{
		"/svc/Admin":   AdminOnly,
		"/svc/Open":    Public,
		"/svc/Read":    Accounts,
		"/svc/Check":   Services("matching"),
		"/svc/Both":    Accounts.Or(Services("payment")),
		"/svc/AnySvc":  AnyService,
		"/svc/AnyOne":  Authenticated,
		"/svc/Unnamed": Services(),
	}
	const ok = errs.Kind(-1)
	cases := []struct {
		method, key string
		want        errs.Kind
		who         string
	}{
		{"/svc/Read", "alice-key", ok, "account:alice"},
		{"/svc/Read", "bob-secret", ok, "account:bob"},
		{"/svc/Read", "root-key", ok, "admin:ops"},
		{"/svc/Read", "m-key", errs.KindPermissionDenied, ""},
		{"/svc/Read", "", errs.KindUnauthenticated, ""},
		{"/svc/Read", "nope", errs.KindUnauthenticated, ""},
		{"/svc/Admin", "alice-key", errs.KindPermissionDenied, ""},
		{"/svc/Admin", "m-key", errs.KindPermissionDenied, ""},
		{"/svc/Admin", "root-key", ok, "admin:ops"},
		{"/svc/Check", "m-key", ok, "service:matching"},
		{"/svc/Check", "p-key", errs.KindPermissionDenied, ""},
		{"/svc/Check", "alice-key", errs.KindPermissionDenied, ""},
		{"/svc/Check", "root-key", ok, "admin:ops"},
		{"/svc/Both", "p-key", ok, "service:payment"},
		{"/svc/Both", "alice-key", ok, "account:alice"},
		{"/svc/Both", "m-key", errs.KindPermissionDenied, ""},
		{"/svc/AnySvc", "m-key", ok, "service:matching"},
		{"/svc/AnySvc", "alice-key", errs.KindPermissionDenied, ""},
		{"/svc/AnyOne", "alice-key", ok, "account:alice"},
		{"/svc/AnyOne", "p-key", ok, "service:payment"},
		{"/svc/Unnamed", "m-key", errs.KindPermissionDenied, ""},
		{"/svc/Open", "", ok, "anonymous"},
		{"/grpc.health.v1.Health/Check", "", ok, "anonymous"},
		// Default deny: a method nobody classified is refused to every caller, admins included.
		{"/svc/Forgotten", "root-key", errs.KindPermissionDenied, ""},
		{"/svc/Forgotten", "alice-key", errs.KindPermissionDenied, ""},
		{"/svc/Forgotten", "", errs.KindPermissionDenied, ""},
	}
	for _, c := range cases {
		id, err := k.Authorize(policy, c.method, c.key)
		if c.want == ok {
			if err != nil || id.String() != c.who {
				t.Errorf("%s with %q: id=%v err=%v, want %s", c.method, c.key, id, err, c.who)
			}
			continue
		}
		if errs.KindOf(err) != c.want {
			t.Errorf("%s with %q: err=%v, want kind %v", c.method, c.key, err, c.want)
		}
	}
}

func TestAccessString(t *testing.T) {
	for a, want := range map[Access]string{
		Public:    "public",
		AdminOnly: "admin",
		Accounts:  "accounts, admin",
		Services("payment", "matching", "matching"):                "service:matching, service:payment, admin",
		Accounts.Or(Services("payment")).Or(Services("inference")): "accounts, service:inference, service:payment, admin",
		Services("x").Or(AnyService):                               "any service, admin",
	} {
		if got := a.String(); got != want {
			t.Errorf("%#v: %q, want %q", a, got, want)
		}
	}
	if Services("b", "a") != Services("a", "b") {
		t.Error("the order services are named in changes the rule")
	}
}

func TestParseKeyringRejectsBadEntries(t *testing.T) {
	for _, spec := range []string{"k", "k=root:x", "k=admin:", "=admin:x", "sha256:zz=admin:x", "k=account:bad subject"} {
		if _, err := ParseKeyring(spec); err == nil {
			t.Errorf("ParseKeyring(%q) accepted a bad entry", spec)
		}
	}
}

func TestDuplicateKeysRefused(t *testing.T) {
	hashed := fmt.Sprintf("sha256:%x", sha256.Sum256([]byte("k1")))
	for _, spec := range []string{"k1=admin:ops,k1=account:alice", "k1=account:alice," + hashed + "=account:bob", "k1=account:alice,k1=account:alice"} {
		_, err := ParseKeyring(spec)
		if err == nil {
			t.Errorf("ParseKeyring(%q) accepted a key twice", spec)
			continue
		}
		if strings.Contains(err.Error(), "k1") || strings.Contains(err.Error(), hashed[7:]) {
			t.Errorf("error %q reveals the key", err)
		}
	}
	a, _ := ParseKeyring("k1=account:alice")
	b, _ := ParseKeyring("k2=account:bob,k1=service:matching")
	if _, err := a.Merge(b); err == nil {
		t.Error("Merge accepted a key present in both keyrings")
	}
	// Two keys for one identity is how rotation overlaps; it stays allowed.
	if _, err := ParseKeyring("old=service:matching,new=service:matching"); err != nil {
		t.Errorf("two keys for one identity: %v", err)
	}
}

func TestParseKeyFile(t *testing.T) {
	k, err := ParseKeyFile("# risk's callers\n\nm-key=service:matching\r\n  alice-key = account:alice\n# end\n")
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := k.Lookup("m-key"); !ok || id != Service("matching") {
		t.Errorf("m-key: %v %v", id, ok)
	}
	if id, ok := k.Lookup("alice-key"); !ok || id != Account("alice") {
		t.Errorf("alice-key: %v %v", id, ok)
	}
	if k.Len() != 2 {
		t.Errorf("Len %d, want 2", k.Len())
	}
	if _, err := ParseKeyFile("a=admin:ops\nb=root:x\n"); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad line: err=%v, want one naming line 2", err)
	}
}

func TestRequireAccess(t *testing.T) {
	alice := WithIdentity(context.Background(), Account("alice"))
	admin := WithIdentity(context.Background(), Admin("ops"))
	matching := WithIdentity(context.Background(), Service("matching"))
	if err := RequireAccess(alice, "alice"); err != nil {
		t.Errorf("alice on own account: %v", err)
	}
	err := RequireAccess(alice, "bob")
	if errs.KindOf(err) != errs.KindPermissionDenied {
		t.Error("alice reached bob's account")
	}
	if strings.Contains(err.Error(), "bob") {
		t.Errorf("the refusal %q names the other account", err)
	}
	if err := RequireAccess(admin, "bob"); err != nil {
		t.Errorf("admin on bob: %v", err)
	}
	if err := RequireAccess(matching, "bob"); err != nil {
		t.Errorf("a service the policy admitted, on bob: %v", err)
	}
	if errs.KindOf(RequireAccess(context.Background(), "bob")) != errs.KindUnauthenticated {
		t.Error("anonymous caller reached an account")
	}
}

func TestIdentityString(t *testing.T) {
	for id, want := range map[Identity]string{Account("alice"): "account:alice", Service("payment"): "service:payment", Admin("ops"): "admin:ops", {}: "anonymous"} {
		if id.String() != want {
			t.Errorf("%#v.String() = %q, want %q", id, id.String(), want)
		}
	}
}

// An entry is split at its first "=", so for a key that itself contains "=" the role read is part of
// the key: the error, which reaches the logs, must not repeat it.
func TestKeyringErrorDoesNotQuoteKeyMaterial(t *testing.T) {
	_, err := ParseKeyring("abc=secretpart=admin:ops")
	if err == nil {
		t.Fatal("a key containing '=' was accepted")
	}
	if strings.Contains(err.Error(), "secretpart") {
		t.Fatalf("error repeats part of the key: %v", err)
	}
}
