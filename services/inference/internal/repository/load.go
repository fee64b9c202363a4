package repository

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/inference/internal/modelconfig"
)

// listModels names the model directories of the repository (those with a config file).
func (m *Manager) listModels() ([]string, error) {
	entries, err := os.ReadDir(m.opts.Root)
	if err != nil {
		return nil, fmt.Errorf("model repository %s: %w", m.opts.Root, err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && ValidModelName(e.Name()) {
			if _, err := os.Stat(filepath.Join(m.opts.Root, e.Name(), modelconfig.FileName)); err == nil {
				names = append(names, e.Name())
			}
		}
	}
	return names, nil
}

// sync loads the versions of one model that its policy selects and are new or changed, swaps them
// in, and retires the versions no longer selected. Versions that fail to load stay listed as
// unavailable with the reason; other versions keep serving.
func (m *Manager) sync(name string) error {
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	dir := filepath.Join(m.opts.Root, name)
	if _, err := os.Stat(dir); err != nil {
		return errs.New(errs.KindNotFound, "model %q is not in the repository", name)
	}
	cfg, cfgBytes, err := modelconfig.Load(dir)
	if err != nil {
		return errs.Wrap(errs.KindFailedPrecondition, err, "model %q", name)
	}
	be, ok := m.backends[cfg.Platform]
	if !ok {
		return errs.New(errs.KindFailedPrecondition, "model %q: no backend for platform %q", name, cfg.Platform)
	}
	available, err := m.versionsOnDisk(dir, be.FileName())
	if err != nil {
		return errs.Wrap(errs.KindFailedPrecondition, err, "model %q", name)
	}
	wanted := cfg.VersionPolicy.Select(available)

	m.mu.RLock()
	current := map[int64]*version{}
	if md, ok := m.models[name]; ok {
		for n, v := range md.versions {
			current[n] = v
		}
	}
	m.mu.RUnlock()

	next := map[int64]*version{}
	var loadErrs []error
	for _, n := range wanted {
		path := filepath.Join(dir, strconv.FormatInt(n, 10), be.FileName())
		fp, err := fingerprint(cfgBytes, path)
		if err != nil {
			loadErrs = append(loadErrs, err)
			continue
		}
		if old, ok := current[n]; ok && old.fingerprint == fp {
			next[n] = old
			continue
		}
		v := newVersion(name, n, cfg, fp, m.opts.Metrics)
		s, err := be.Load(path, cfg)
		if err != nil {
			v.reason = err.Error()
			loadErrs = append(loadErrs, fmt.Errorf("version %d: %w", n, err))
			m.opts.Logger.Error("model version failed to load", "model", name, "version", n, "err", err)
		} else {
			v.start(s)
			m.opts.Logger.Info("model version loaded", "model", name, "version", n)
		}
		next[n] = v
	}

	m.mu.Lock()
	md, ok := m.models[name]
	if !ok {
		md = &model{name: name}
		m.models[name] = md
	}
	md.cfg = cfg
	md.versions = next
	m.mu.Unlock()
	// Retire what was replaced or dropped only after the swap, so every request finds a version.
	for n, old := range current {
		if next[n] != old {
			old.retire()
			m.opts.Logger.Info("model version unloaded", "model", name, "version", n)
		}
	}
	if len(wanted) == 0 {
		return errs.New(errs.KindFailedPrecondition, "model %q has no version directory with %s", name, be.FileName())
	}
	ready := 0
	for _, v := range next {
		if v.ready() {
			ready++
		}
	}
	if ready == 0 {
		return errs.Wrap(errs.KindFailedPrecondition, errors.Join(loadErrs...), "model %q: no version could be loaded", name)
	}
	return nil
}

// versionsOnDisk lists the numbered version directories that hold a model file.
func (m *Manager) versionsOnDisk(dir, file string) ([]int64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []int64
	for _, e := range entries {
		n, err := strconv.ParseInt(e.Name(), 10, 64)
		if err != nil || n < 1 || !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, e.Name(), file)); err == nil {
			out = append(out, n)
		}
	}
	return out, nil
}

// fingerprint changes when the config or the model file changes (size or modification time).
func fingerprint(cfg []byte, modelPath string) (string, error) {
	st, err := os.Stat(modelPath)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write(cfg)
	fmt.Fprintf(h, "\x00%d\x00%d", st.Size(), st.ModTime().UnixNano())
	return hex.EncodeToString(h.Sum(nil)), nil
}

func parseVersion(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return 0, errs.Invalid("model_version", "%q is not a version number", s)
	}
	return n, nil
}
