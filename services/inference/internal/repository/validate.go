package repository

import (
	"fmt"
	"regexp"
	"slices"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/inference/internal/modelconfig"
	"github.com/bourse-dev/bourse/services/inference/internal/tensor"
)

var modelNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// ValidModelName reports whether name can name a model directory: it is also a path element, so
// separators and dot-dot are out.
func ValidModelName(name string) bool {
	return modelNamePattern.MatchString(name) && name != "." && name != ".."
}

// conform checks a request's inputs against the model's declared inputs and returns them in the
// config's order, with the batch size (rows; 0 for models without a batch dimension).
func conform(cfg modelconfig.Config, inputs []tensor.Tensor) ([]tensor.Tensor, int64, error) {
	ordered := make([]tensor.Tensor, len(cfg.Inputs))
	found := make([]bool, len(cfg.Inputs))
	rows := int64(-1)
	for _, in := range inputs {
		field := fmt.Sprintf("inputs[%q]", in.Name)
		i := slices.IndexFunc(cfg.Inputs, func(s modelconfig.TensorSpec) bool { return s.Name == in.Name })
		if i < 0 {
			return nil, 0, errs.Invalid(field, "the model has no such input (it takes %s)", specNames(cfg.Inputs))
		}
		if found[i] {
			return nil, 0, errs.Invalid(field, "given twice")
		}
		found[i] = true
		spec := cfg.Inputs[i]
		if in.Datatype != spec.Datatype {
			return nil, 0, errs.Invalid(field+".datatype", "is %s, the model takes %s", in.Datatype, spec.Datatype)
		}
		dims := in.Shape
		if cfg.MaxBatchSize > 0 {
			if len(in.Shape) == 0 {
				return nil, 0, errs.Invalid(field+".shape", "needs a batch dimension first, then %v", spec.Dims)
			}
			n := in.Shape[0]
			if n < 1 || n > int64(cfg.MaxBatchSize) {
				return nil, 0, errs.Invalid(field+".shape", "batch size %d is outside 1-%d", n, cfg.MaxBatchSize)
			}
			if rows >= 0 && n != rows {
				return nil, 0, errs.Invalid(field+".shape", "batch size %d differs from the other inputs' %d", n, rows)
			}
			rows = n
			dims = in.Shape[1:]
		}
		if !dimsMatch(spec.Dims, dims) {
			return nil, 0, errs.Invalid(field+".shape", "%v does not fit the model's %v", in.Shape, cfg.FullShape(spec))
		}
		if err := tensor.CheckBytes(in.Datatype, in.Shape, in.Data); err != nil {
			return nil, 0, errs.Invalid(field+".contents", "%v", err)
		}
		ordered[i] = in
	}
	for i, ok := range found {
		if !ok {
			return nil, 0, errs.Invalid(fmt.Sprintf("inputs[%q]", cfg.Inputs[i].Name), "missing")
		}
	}
	return ordered, max(rows, 0), nil
}

// wantedOutputs resolves the requested output names to indexes into the config's outputs.
func wantedOutputs(cfg modelconfig.Config, names []string) ([]int, error) {
	if len(names) == 0 {
		all := make([]int, len(cfg.Outputs))
		for i := range all {
			all[i] = i
		}
		return all, nil
	}
	out := make([]int, 0, len(names))
	for _, n := range names {
		i := slices.IndexFunc(cfg.Outputs, func(s modelconfig.TensorSpec) bool { return s.Name == n })
		if i < 0 {
			return nil, errs.Invalid(fmt.Sprintf("outputs[%q]", n), "the model has no such output (it has %s)", specNames(cfg.Outputs))
		}
		if slices.Contains(out, i) {
			return nil, errs.Invalid(fmt.Sprintf("outputs[%q]", n), "requested twice")
		}
		out = append(out, i)
	}
	return out, nil
}

func dimsMatch(spec, got []int64) bool {
	if len(spec) != len(got) {
		return false
	}
	for i := range spec {
		if spec[i] != -1 && spec[i] != got[i] {
			return false
		}
	}
	return true
}

func specNames(specs []modelconfig.TensorSpec) string {
	s := ""
	for i, t := range specs {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%q", t.Name)
	}
	return s
}
