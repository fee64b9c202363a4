package grpcapi

import (
	"context"

	"github.com/bourse-dev/bourse/pkg/auth"
	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/inference/internal/repository"
)

// caller is the caller the runtime authenticated, as the models' access rules name callers. The
// repository applies a model's rule to it in the same lookup that finds the model for the call,
// before anything that depends on the model (tensor checks, versions, the response cache), so a
// refused caller learns nothing about the model from errors either, and a model loaded or
// reloaded meanwhile cannot answer a caller its rule refuses.
func caller(ctx context.Context) (repository.Caller, error) {
	id, ok := auth.FromContext(ctx)
	if !ok {
		return repository.Caller{}, errs.New(errs.KindUnauthenticated, "no caller identity")
	}
	return repository.Caller{Role: id.Role.String(), Subject: id.Subject}, nil
}
