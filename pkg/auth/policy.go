package auth

import (
	"slices"
	"strings"

	"google.golang.org/grpc"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// Access is who may call a method. Admins may call every method that is not public; the other kinds
// are granted explicitly, so a method nobody thought about is open to no one.
//
// Access is comparable so that policies can be written as map literals and compared in tests.
type Access struct {
	public   bool
	accounts bool
	// services is "" (none), "*" (every service identity) or the sorted, comma-separated names.
	services string
}

var (
	// Public methods need no key (health, reflection, liveness).
	Public = Access{public: true}
	// AdminOnly methods need an admin key.
	AdminOnly = Access{}
	// Accounts admits every account identity (and admins). The handler must still check that the
	// account in the request is the caller's own (RequireAccess).
	Accounts = Access{accounts: true}
	// AnyService admits every service identity (and admins).
	AnyService = Access{services: "*"}
	// Authenticated admits any known key.
	Authenticated = Access{accounts: true, services: "*"}
)

// Services admits the named service identities (and admins).
func Services(names ...string) Access {
	names = slices.Clone(names)
	slices.Sort(names)
	return Access{services: strings.Join(slices.Compact(names), ",")}
}

// Or admits the callers of both a and b.
func (a Access) Or(b Access) Access {
	out := Access{public: a.public || b.public, accounts: a.accounts || b.accounts}
	switch {
	case a.services == "*" || b.services == "*":
		out.services = "*"
	case a.services == "":
		out.services = b.services
	case b.services == "":
		out.services = a.services
	default:
		out.services = Services(append(strings.Split(a.services, ","), strings.Split(b.services, ",")...)...).services
	}
	return out
}

// IsPublic reports whether the method needs no key.
func (a Access) IsPublic() bool { return a.public }

// Allows reports whether id may call a method with this rule.
func (a Access) Allows(id Identity) bool {
	if a.public {
		return true
	}
	switch id.Role {
	case RoleAdmin:
		return true
	case RoleAccount:
		return a.accounts
	case RoleService:
		return a.services == "*" || slices.Contains(strings.Split(a.services, ","), id.Subject)
	}
	return false
}

// String lists who is admitted, e.g. "accounts, service:matching, admin".
func (a Access) String() string {
	if a.public {
		return "public"
	}
	var who []string
	if a.accounts {
		who = append(who, "accounts")
	}
	switch a.services {
	case "":
	case "*":
		who = append(who, "any service")
	default:
		for s := range strings.SplitSeq(a.services, ",") {
			who = append(who, "service:"+s)
		}
	}
	return strings.Join(append(who, "admin"), ", ")
}

// Policy gives the access rule per full method name ("/pkg.Service/Method"). A method missing from
// it is refused to everyone (health and reflection are public without being listed).
type Policy map[string]Access

// For returns the rule for a method and whether the method is classified at all.
func (p Policy) For(fullMethod string) (Access, bool) {
	if a, ok := p[fullMethod]; ok {
		return a, true
	}
	if strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/") ||
		strings.HasPrefix(fullMethod, "/grpc.reflection.") {
		return Public, true
	}
	return Access{}, false
}

// Unclassified lists the methods of the given services that p does not classify.
func (p Policy) Unclassified(services ...*grpc.ServiceDesc) []string {
	var out []string
	for _, sd := range services {
		for _, m := range sd.Methods {
			if _, ok := p.For("/" + sd.ServiceName + "/" + m.MethodName); !ok {
				out = append(out, "/"+sd.ServiceName+"/"+m.MethodName)
			}
		}
		for _, st := range sd.Streams {
			if _, ok := p.For("/" + sd.ServiceName + "/" + st.StreamName); !ok {
				out = append(out, "/"+sd.ServiceName+"/"+st.StreamName)
			}
		}
	}
	return out
}

// Authorize decides whether a presented key (empty if none) may call fullMethod.
//
// An unclassified method answers PermissionDenied, not Unimplemented: the method exists (reflection
// lists it) and the server chose not to serve it; Unimplemented would send a client hunting for a
// version mismatch. The check comes before the key check so that no caller, not even an admin, can
// reach a method nobody classified.
func (k *Keyring) Authorize(p Policy, fullMethod, key string) (Identity, error) {
	access, ok := p.For(fullMethod)
	if !ok {
		return Identity{}, errs.New(errs.KindPermissionDenied, "%s is not in this service's access policy", fullMethod)
	}
	if access.public {
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
	if !access.Allows(id) {
		return Identity{}, errs.New(errs.KindPermissionDenied, "%s may not call %s (allowed: %s)", id, fullMethod, access)
	}
	return id, nil
}
