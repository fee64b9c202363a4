// Package onnx runs ONNX models with onnxruntime, loaded from a shared library at run time.
package onnx

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/bourse-dev/bourse/services/inference/internal/backend"
	"github.com/bourse-dev/bourse/services/inference/internal/modelconfig"
	"github.com/bourse-dev/bourse/services/inference/internal/tensor"
)

// Options tune the sessions the backend creates.
type Options struct {
	// IntraOpThreads per session; 0 lets onnxruntime choose.
	IntraOpThreads int
}

// Backend loads .onnx files.
type Backend struct {
	opts Options
}

var (
	initOnce sync.Once
	initErr  error
)

// New loads the onnxruntime shared library at libPath (once per process; later calls must name
// the same library) and returns the backend.
func New(libPath string, opts Options) (*Backend, error) {
	initOnce.Do(func() {
		if _, err := os.Stat(libPath); err != nil {
			initErr = fmt.Errorf("onnxruntime library: %w (scripts/onnxruntime.sh installs it into ./bin)", err)
			return
		}
		ort.SetSharedLibraryPath(libPath)
		initErr = ort.InitializeEnvironment(ort.WithLogLevelError())
	})
	if initErr != nil {
		return nil, initErr
	}
	return &Backend{opts: opts}, nil
}

// Platform implements backend.Backend.
func (b *Backend) Platform() string { return modelconfig.PlatformONNX }

// FileName implements backend.Backend.
func (b *Backend) FileName() string { return "model.onnx" }

// Load implements backend.Backend: it checks the model's tensors against cfg, then opens a session.
func (b *Backend) Load(path string, cfg modelconfig.Config) (backend.Session, error) {
	ins, outs, err := ort.GetInputOutputInfo(path)
	if err != nil {
		return nil, fmt.Errorf("read model: %w", err)
	}
	if err := matchTensors("input", cfg.Inputs, ins, cfg.MaxBatchSize > 0); err != nil {
		return nil, err
	}
	if err := matchTensors("output", cfg.Outputs, outs, cfg.MaxBatchSize > 0); err != nil {
		return nil, err
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	// Spinning worker threads keep cores busy between executions; on a shared host they starve the
	// gRPC server and batch collection, which matter more than the microseconds spinning saves.
	if err := so.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"); err != nil {
		return nil, err
	}
	if b.opts.IntraOpThreads > 0 {
		if err := so.SetIntraOpNumThreads(b.opts.IntraOpThreads); err != nil {
			return nil, err
		}
	}
	inNames, outNames := names(cfg.Inputs), names(cfg.Outputs)
	s, err := ort.NewDynamicAdvancedSession(path, inNames, outNames, so)
	if err != nil {
		return nil, fmt.Errorf("create session: %w", err)
	}
	return &session{s: s, cfg: cfg}, nil
}

func names(specs []modelconfig.TensorSpec) []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.Name
	}
	return out
}

// matchTensors checks that every declared tensor exists in the model with the same element type
// and a compatible shape.
func matchTensors(kind string, specs []modelconfig.TensorSpec, infos []ort.InputOutputInfo, batched bool) error {
	var problems []error
	for _, s := range specs {
		var info *ort.InputOutputInfo
		for i := range infos {
			if infos[i].Name == s.Name {
				info = &infos[i]
			}
		}
		if info == nil {
			problems = append(problems, fmt.Errorf("%s %q is not in the model", kind, s.Name))
			continue
		}
		if info.OrtValueType != ort.ONNXTypeTensor {
			problems = append(problems, fmt.Errorf("%s %q is a %s, not a tensor", kind, s.Name, info.OrtValueType))
			continue
		}
		dt, ok := fromORT(info.DataType)
		if !ok || dt != s.Datatype {
			problems = append(problems, fmt.Errorf("%s %q is %s in the model, %s in the config", kind, s.Name, info.DataType, s.Datatype))
		}
		want := s.Dims
		if batched {
			want = append([]int64{-1}, s.Dims...)
		}
		if !shapeCompatible(want, info.Dimensions) {
			problems = append(problems, fmt.Errorf("%s %q has shape %v in the model, %v in the config", kind, s.Name, []int64(info.Dimensions), want))
		}
	}
	return errors.Join(problems...)
}

func shapeCompatible(cfg []int64, model ort.Shape) bool {
	if len(cfg) != len(model) {
		return false
	}
	for i := range cfg {
		if cfg[i] != -1 && model[i] != -1 && cfg[i] != model[i] {
			return false
		}
	}
	return true
}

type session struct {
	s   *ort.DynamicAdvancedSession
	cfg modelconfig.Config
}

// Run implements backend.Session.
func (s *session) Run(inputs []tensor.Tensor) ([]tensor.Tensor, error) {
	in := make([]ort.Value, len(inputs))
	defer func() {
		for _, v := range in {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	for i, t := range inputs {
		dt, ok := toORT(t.Datatype)
		if !ok {
			return nil, fmt.Errorf("input %q: %s is not supported by onnxruntime here", t.Name, t.Datatype)
		}
		if len(t.Data) == 0 {
			return nil, fmt.Errorf("input %q is empty", t.Name)
		}
		v, err := ort.NewCustomDataTensor(ort.NewShape(t.Shape...), t.Data, dt)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", t.Name, err)
		}
		in[i] = v
	}
	out := make([]ort.Value, len(s.cfg.Outputs))
	err := s.s.Run(in, out)
	// onnxruntime reads the input bytes through C pointers: keep them alive until Run returns.
	runtime.KeepAlive(inputs)
	defer func() {
		for _, v := range out {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	if err != nil {
		return nil, err
	}
	result := make([]tensor.Tensor, len(out))
	for i, v := range out {
		t, err := toTensor(s.cfg.Outputs[i].Name, v)
		if err != nil {
			return nil, err
		}
		result[i] = t
	}
	return result, nil
}

// Close implements backend.Session.
func (s *session) Close() error { return s.s.Destroy() }
