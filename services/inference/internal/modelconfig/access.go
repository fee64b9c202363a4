package modelconfig

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Access is a model's access rule: who may infer with it and read its metadata and readiness. Each
// entry is a role ("admin": any admin) or role:subject ("service:payment", "account:alice"), the
// form identities print as. nil admits every authenticated caller; a model that must not serve as
// an oracle (the fraud model, which a fraudster could probe to tune an attempt) lists its callers:
//
//	"allow": ["service:payment", "admin"]
type Access []string

// Roles an entry may name: those of the service's callers.
var accessRoles = []string{"admin", "account", "service"}

var accessSubject = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Allows reports whether a caller of that role and subject may use the model.
func (a Access) Allows(role, subject string) bool {
	if a == nil {
		return true
	}
	for _, e := range a {
		r, s, scoped := strings.Cut(e, ":")
		if r == role && (!scoped || s == "*" || s == subject) {
			return true
		}
	}
	return false
}

func (a Access) validate() error {
	if a != nil && len(a) == 0 {
		return errors.New("an empty list admits nobody; leave allow out to admit every authenticated caller")
	}
	var problems []error
	for _, e := range a {
		r, s, scoped := strings.Cut(e, ":")
		switch {
		case !slices.Contains(accessRoles, r):
			problems = append(problems, fmt.Errorf("%q: role %q is not one of %s", e, r, strings.Join(accessRoles, ", ")))
		case scoped && s != "*" && !accessSubject.MatchString(s):
			problems = append(problems, fmt.Errorf("%q: subject %q does not match %s", e, s, accessSubject))
		}
	}
	return errors.Join(problems...)
}
