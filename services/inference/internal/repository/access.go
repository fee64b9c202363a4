package repository

import "github.com/bourse-dev/bourse/pkg/errs"

// Caller is who asks, as the model's access rule names callers: a role ("admin", "account",
// "service") and a subject (the operator, account or service name).
type Caller struct {
	Role    string
	Subject string
}

// Authorize fails with PermissionDenied unless caller may use the model under its access rule.
// The refusal names neither the rule nor the model's versions or tensors, so a refused caller
// learns nothing beyond the model's existence, which RepositoryIndex shows anyway. A model that is
// not loaded has no rule in force and nothing to reveal: the call itself answers (NotFound, or not
// ready).
func (m *Manager) Authorize(model string, caller Caller) error {
	m.mu.RLock()
	md, ok := m.models[model]
	m.mu.RUnlock()
	if ok && !md.cfg.Allow.Allows(caller.Role, caller.Subject) {
		return errs.New(errs.KindPermissionDenied, "model %q: this caller may not use it", model)
	}
	return nil
}
