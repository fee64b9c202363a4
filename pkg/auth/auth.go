// Package auth turns an API key from request metadata into a caller identity. Keys are kept only as
// SHA-256 digests and compared in constant time; they never appear in logs or errors.
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// Role is the kind of caller: a trading account, a named internal service, or an operator.
type Role int

const (
	RoleAccount Role = iota + 1
	RoleAdmin
	// RoleService is another bourse service calling with its own key (Subject names it: "matching",
	// "payment", "training", "inference", "discovery", ...).
	RoleService
)

func (r Role) String() string {
	switch r {
	case RoleAdmin:
		return "admin"
	case RoleAccount:
		return "account"
	case RoleService:
		return "service"
	}
	return "unknown"
}

// ParseRole is the inverse of Role.String.
func ParseRole(s string) (Role, bool) {
	switch s {
	case "admin":
		return RoleAdmin, true
	case "account":
		return RoleAccount, true
	case "service":
		return RoleService, true
	}
	return 0, false
}

// Identity is who is calling.
type Identity struct {
	Role Role
	// Subject is the account id for RoleAccount, the service name for RoleService and the operator
	// name for RoleAdmin.
	Subject string
}

// Account, Service and Admin build identities.
func Account(id string) Identity   { return Identity{Role: RoleAccount, Subject: id} }
func Service(name string) Identity { return Identity{Role: RoleService, Subject: name} }
func Admin(name string) Identity   { return Identity{Role: RoleAdmin, Subject: name} }

// String is "role:subject", e.g. "account:alice", "service:payment", "admin:ops" (the form keyrings
// and logs use).
func (id Identity) String() string {
	if id.Role == 0 {
		return "anonymous"
	}
	return id.Role.String() + ":" + id.Subject
}

// IsAdmin reports whether the caller holds the admin role.
func (id Identity) IsAdmin() bool { return id.Role == RoleAdmin }

// IsService reports whether the caller is the named internal service.
func (id Identity) IsService(name string) bool { return id.Role == RoleService && id.Subject == name }

// CanAccess reports whether the caller may read or change account's resources: the account itself or
// an admin. Services are not accounts; a method open to a service says so in its policy.
func (id Identity) CanAccess(account string) bool {
	return id.IsAdmin() || (id.Role == RoleAccount && id.Subject == account)
}

type ctxKey struct{}

// WithIdentity returns a context carrying id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the caller identity established by the server's interceptor.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}

// RequireAccess fails unless the caller in ctx may touch account.
func RequireAccess(ctx context.Context, account string) error {
	id, ok := FromContext(ctx)
	if !ok {
		return errs.New(errs.KindUnauthenticated, "no caller identity")
	}
	if !id.CanAccess(account) {
		return errs.New(errs.KindPermissionDenied, "caller %q may not access account %q", id.Subject, account)
	}
	return nil
}

// Keyring maps API keys (by digest) to identities.
type Keyring struct {
	entries []keyEntry
}

type keyEntry struct {
	digest [sha256.Size]byte
	id     Identity
}

var subjectPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ParseKeyring reads "key=role:subject" entries separated by commas, e.g.
// "dev-admin=admin:ops,dev-alice=account:alice". A key may be given as "sha256:<hex>" so that the
// plain key need not be stored in configuration.
func ParseKeyring(spec string) (*Keyring, error) {
	k := &Keyring{}
	for i, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		key, rest, ok := strings.Cut(item, "=")
		if !ok || key == "" {
			return nil, fmt.Errorf("api key entry %d: want key=role:subject", i+1)
		}
		roleName, subject, ok := strings.Cut(rest, ":")
		if !ok || !subjectPattern.MatchString(subject) {
			return nil, fmt.Errorf("api key entry %d: want role:subject with subject matching %s", i+1, subjectPattern)
		}
		role, ok := ParseRole(roleName)
		if !ok {
			return nil, fmt.Errorf("api key entry %d: role %q is not admin, service or account", i+1, roleName)
		}
		digest, err := keyDigest(key)
		if err != nil {
			return nil, fmt.Errorf("api key entry %d: %w", i+1, err)
		}
		k.entries = append(k.entries, keyEntry{digest: digest, id: Identity{Role: role, Subject: subject}})
	}
	return k, nil
}

func keyDigest(key string) ([sha256.Size]byte, error) {
	var d [sha256.Size]byte
	if hexDigest, ok := strings.CutPrefix(key, "sha256:"); ok {
		raw, err := hex.DecodeString(hexDigest)
		if err != nil || len(raw) != sha256.Size {
			return d, fmt.Errorf("sha256 digest must be %d hex digits", 2*sha256.Size)
		}
		copy(d[:], raw)
		return d, nil
	}
	return sha256.Sum256([]byte(key)), nil
}

// Len is the number of keys.
func (k *Keyring) Len() int { return len(k.entries) }

// Lookup finds the identity for a presented key.
func (k *Keyring) Lookup(key string) (Identity, bool) {
	d := sha256.Sum256([]byte(key))
	var found Identity
	ok := false
	for _, e := range k.entries { // no early exit: timing does not reveal which entry matched
		if subtle.ConstantTimeCompare(d[:], e.digest[:]) == 1 {
			found, ok = e.id, true
		}
	}
	return found, ok
}

// Access is what a method demands of its caller.
type Access int

const (
	// Authenticated methods need any known key; this is the default.
	Authenticated Access = iota
	// Public methods need no key (health, reflection).
	Public
	// AdminOnly methods need an admin key.
	AdminOnly
)

// Policy gives the access rule per full method name ("/pkg.Service/Method").
type Policy map[string]Access

// For returns the rule for a method.
func (p Policy) For(fullMethod string) Access {
	if a, ok := p[fullMethod]; ok {
		return a
	}
	if strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/") ||
		strings.HasPrefix(fullMethod, "/grpc.reflection.") {
		return Public
	}
	return Authenticated
}

// Authorize decides whether a presented key (empty if none) may call fullMethod.
func (k *Keyring) Authorize(p Policy, fullMethod, key string) (Identity, error) {
	access := p.For(fullMethod)
	if access == Public {
		id, _ := k.Lookup(key)
		return id, nil
	}
	if key == "" {
		return Identity{}, errs.New(errs.KindUnauthenticated, "missing API key: send metadata \"authorization: Bearer <key>\"")
	}
	id, ok := k.Lookup(key)
	if !ok {
		return Identity{}, errs.New(errs.KindUnauthenticated, "unknown API key")
	}
	if access == AdminOnly && !id.IsAdmin() {
		return Identity{}, errs.New(errs.KindPermissionDenied, "%s needs an admin identity", fullMethod)
	}
	return id, nil
}
