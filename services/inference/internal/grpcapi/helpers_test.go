package grpcapi

import (
	"github.com/bourse-dev/bourse/services/inference/internal/repository"
	"github.com/bourse-dev/bourse/services/inference/internal/tensor"
)

func repositoryResponse(ts ...tensor.Tensor) repository.Response {
	return repository.Response{Model: "m", Version: "1", Outputs: ts}
}
