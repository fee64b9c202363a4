package repository

import (
	"cmp"
	"slices"
	"strconv"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/inference/internal/modelconfig"
)

// Metadata describes a loaded model.
type Metadata struct {
	Name     string
	Versions []string // ready versions, ascending
	Platform string
	Inputs   []TensorMeta
	Outputs  []TensorMeta
}

// TensorMeta is one input or output as clients see it (batch dimension included as -1).
type TensorMeta struct {
	Name     string
	Datatype string
	Shape    []int64
}

// Metadata returns a model's metadata to a caller its rule admits; with a version, that version
// must be loaded.
func (m *Manager) Metadata(caller Caller, name, ver string) (Metadata, error) {
	number, err := parseVersion(ver)
	if err != nil {
		return Metadata{}, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	md, ok := m.models[name]
	if !ok {
		return Metadata{}, notLoaded(name)
	}
	if !md.allows(caller) {
		return Metadata{}, refused(name)
	}
	cfg := md.cfg
	if number != 0 {
		v, ok := md.versions[number]
		if !ok {
			return Metadata{}, errs.New(errs.KindNotFound, "model %q has no version %d loaded", name, number)
		}
		cfg = v.cfg
	}
	out := Metadata{Name: name, Platform: cfg.Platform, Versions: readyVersions(md)}
	for _, s := range cfg.Inputs {
		out.Inputs = append(out.Inputs, tensorMeta(cfg, s))
	}
	for _, s := range cfg.Outputs {
		out.Outputs = append(out.Outputs, tensorMeta(cfg, s))
	}
	return out, nil
}

func tensorMeta(cfg modelconfig.Config, s modelconfig.TensorSpec) TensorMeta {
	return TensorMeta{Name: s.Name, Datatype: s.Datatype.String(), Shape: cfg.FullShape(s)}
}

func readyVersions(md *model) []string {
	var ns []int64
	for n, v := range md.versions {
		if v.ready() {
			ns = append(ns, n)
		}
	}
	slices.Sort(ns)
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = strconv.FormatInt(n, 10)
	}
	return out
}

// ModelReady reports whether the model (version) can serve; NotFound if the repository has no such
// model at all. A caller the model's rule does not admit is refused whether the model is loaded or
// not: for a model that is not loaded, the rule comes from its config on disk, and a model whose
// config cannot be read answers like a name the repository does not have.
func (m *Manager) ModelReady(caller Caller, name, ver string) (bool, error) {
	v, loaded, err := m.lookup(caller, name, ver)
	if err == nil {
		v.release()
		return true, nil
	}
	if k := errs.KindOf(err); k == errs.KindInvalidArgument || k == errs.KindPermissionDenied {
		return false, err
	}
	if !loaded {
		allowed, ok := m.allowedOnDisk(name, caller)
		if !ok {
			return false, notInRepository(name)
		}
		if !allowed {
			return false, refused(name)
		}
		return false, nil
	}
	names, lerr := m.listModels()
	if lerr == nil && !slices.Contains(names, name) {
		return false, notInRepository(name)
	}
	return false, nil
}

// IndexEntry is one line of the repository index.
type IndexEntry struct {
	Name    string
	Version string
	State   State
	Reason  string
}

// Index lists every model of the repository: each loaded version with its state, and models that
// are not loaded as one UNAVAILABLE entry.
func (m *Manager) Index(readyOnly bool) ([]IndexEntry, error) {
	names, err := m.listModels()
	if err != nil {
		return nil, errs.Wrap(errs.KindUnavailable, err, "read model repository")
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	for name := range m.models {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	var out []IndexEntry
	for _, name := range names {
		md, ok := m.models[name]
		if !ok {
			if !readyOnly {
				out = append(out, IndexEntry{Name: name, State: StateUnavailable, Reason: "not loaded"})
			}
			continue
		}
		for _, v := range md.versions {
			if readyOnly && !v.ready() {
				continue
			}
			out = append(out, IndexEntry{Name: name, Version: v.label, State: v.state(), Reason: v.reason})
		}
	}
	slices.SortFunc(out, func(a, b IndexEntry) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(len(a.Version), len(b.Version)), cmp.Compare(a.Version, b.Version))
	})
	return out, nil
}
