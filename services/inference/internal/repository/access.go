package repository

import (
	"path/filepath"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/inference/internal/modelconfig"
)

// Caller is who asks, as the model's access rule names callers: a role ("admin", "account",
// "service") and a subject (the operator, account or service name). The zero Caller names nobody:
// it may use only models without a rule.
type Caller struct {
	Role    string
	Subject string
}

// allows applies a model's access rule to the caller. Every lookup that a call then uses checks
// it under the same lock as the lookup itself, so the model cannot be loaded, reloaded with
// another rule, or swapped between the check and its use.
func (md *model) allows(c Caller) bool { return md.cfg.Allow.Allows(c.Role, c.Subject) }

// refused is the answer to a caller the model's rule does not admit. It names neither the rule nor
// the model's versions or tensors, so a refused caller learns nothing beyond the model's existence,
// which RepositoryIndex shows anyway; it is the same whether the model is loaded or not.
func refused(name string) error {
	return errs.New(errs.KindPermissionDenied, "model %q: this caller may not use it", name)
}

// notLoaded is the answer for a model that is not loaded, the same for a name the repository does
// not have.
func notLoaded(name string) error {
	return errs.New(errs.KindNotFound, "model %q is not loaded", name)
}

// notInRepository is ModelReady's answer for a name the repository does not have, and for a model
// whose rule cannot be read from its config (so nobody is known to be allowed to see it).
func notInRepository(name string) error {
	return errs.New(errs.KindNotFound, "model %q is not in the repository", name)
}

// allowedOnDisk applies the rule of the config on disk to a model that is not loaded. ok is false
// when the repository has no such model or its config cannot be read.
func (m *Manager) allowedOnDisk(name string, c Caller) (allowed, ok bool) {
	if !ValidModelName(name) {
		return false, false
	}
	cfg, _, err := modelconfig.Load(filepath.Join(m.opts.Root, name))
	if err != nil {
		return false, false
	}
	return cfg.Allow.Allows(c.Role, c.Subject), true
}
