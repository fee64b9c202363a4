package grpcapi

import (
	"context"

	"github.com/bourse-dev/bourse/pkg/auth"
	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/inference/internal/repository"
)

// authorize applies the model's access rule to the caller the runtime authenticated. It runs
// before anything that depends on the model (tensor checks, versions, the response cache), so a
// refused caller learns nothing about the model from errors either.
func (s *Server) authorize(ctx context.Context, model string) error {
	id, ok := auth.FromContext(ctx)
	if !ok {
		return errs.New(errs.KindUnauthenticated, "no caller identity")
	}
	return s.repo.Authorize(model, repository.Caller{Role: id.Role.String(), Subject: id.Subject})
}
