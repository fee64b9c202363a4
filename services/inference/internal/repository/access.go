package repository

import "github.com/bourse-dev/bourse/pkg/errs"

// Caller is who asks, as the model's access rule names callers: a role ("admin", "account",
// "service") and a subject (the operator, account or service name).
type Caller struct {
	Role    string
	Subject string
}

// Authorize fails unless caller may use the model under its access rule: NotFound when no such
// model is loaded (what any other call on it would answer), PermissionDenied when the rule does not
// list the caller. The refusal names neither the rule nor the model's versions or tensors, so a
// refused caller learns nothing beyond the model's existence, which RepositoryIndex shows anyway.
func (m *Manager) Authorize(model string, caller Caller) error {
	m.mu.RLock()
	md, ok := m.models[model]
	m.mu.RUnlock()
	if !ok {
		return errs.New(errs.KindNotFound, "model %q is not loaded", model)
	}
	if !md.cfg.Allow.Allows(caller.Role, caller.Subject) {
		return errs.New(errs.KindPermissionDenied, "model %q: this caller may not use it", model)
	}
	return nil
}
