// Package auth turns an API key from request metadata into a caller identity and decides, by the
// method's policy, whether that identity may call. Keys are kept only as SHA-256 digests and looked
// up by digest; they never appear in logs or errors.
package auth

import (
	"context"

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

// CanAccess reports whether the caller may read or change account's resources: the account itself,
// an admin, or a service. A service reaches a method only if the method's policy names it, and then
// acts for the accounts it serves (matching reserves funds for every account's orders).
func (id Identity) CanAccess(account string) bool {
	switch id.Role {
	case RoleAdmin, RoleService:
		return true
	case RoleAccount:
		return id.Subject == account
	}
	return false
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
		// Name neither account: the caller learns only that this one is not theirs.
		return errs.New(errs.KindPermissionDenied, "%s may act only on its own account", id)
	}
	return nil
}
