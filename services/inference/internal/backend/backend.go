// Package backend is what runs a model: a Backend loads a model file into a Session, and a Session
// runs one (possibly batched) execution. onnxruntime is one implementation (package onnx); others
// can sit beside it.
package backend

import (
	"github.com/bourse-dev/bourse/services/inference/internal/modelconfig"
	"github.com/bourse-dev/bourse/services/inference/internal/tensor"
)

// Backend loads model files of one platform.
type Backend interface {
	// Platform is the platform name reported in model metadata, e.g. "onnxruntime_onnx".
	Platform() string
	// FileName is the model file inside a version directory, e.g. "model.onnx".
	FileName() string
	// Load opens a model file for the tensors cfg declares; it fails if the model does not have them.
	Load(path string, cfg modelconfig.Config) (Session, error)
}

// Session is a loaded model. Run may be called concurrently; Close is called once, after the last Run.
type Session interface {
	// Run executes the model on inputs (in the order of the config's inputs) and returns the
	// config's outputs in order.
	Run(inputs []tensor.Tensor) ([]tensor.Tensor, error)
	Close() error
}
