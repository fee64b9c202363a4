// Package repository serves the models of a model repository directory:
// <root>/<model>/config.json and <root>/<model>/<version>/<model file>. It loads the versions a
// model's policy selects, follows the directory (polling mode) or load/unload calls (explicit
// mode), and runs inference on them with batching and the response cache.
package repository

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/inference/internal/backend"
	"github.com/bourse-dev/bourse/services/inference/internal/cache"
	"github.com/bourse-dev/bourse/services/inference/internal/metrics"
	"github.com/bourse-dev/bourse/services/inference/internal/modelconfig"
)

// Mode says who decides which models are loaded.
type Mode int

const (
	// ModePoll loads every model in the repository and follows changes on disk.
	ModePoll Mode = iota
	// ModeExplicit loads only the startup models and those named in load calls.
	ModeExplicit
)

// Options configure a Manager.
type Options struct {
	Root         string
	Mode         Mode
	PollInterval time.Duration // ModePoll: how often the directory is rescanned
	// StartupModels are loaded at start in ModeExplicit; "*" loads all.
	StartupModels []string
	Backends      []backend.Backend
	Cache         cache.Cache // nil disables response caching for every model
	Metrics       *metrics.Metrics
	Logger        *slog.Logger
}

// Manager holds the loaded models.
type Manager struct {
	opts     Options
	backends map[string]backend.Backend

	syncMu sync.Mutex // one load, unload or scan at a time
	mu     sync.RWMutex
	models map[string]*model
	ready  atomic.Bool

	stop chan struct{}
	done chan struct{}
}

// model is a loaded model: its config and its versions (ready or failed), by number.
type model struct {
	name     string
	cfg      modelconfig.Config
	versions map[int64]*version
}

// New creates a manager; Start loads the models.
func New(opts Options) (*Manager, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 2 * time.Second
	}
	m := &Manager{opts: opts, backends: map[string]backend.Backend{}, models: map[string]*model{},
		stop: make(chan struct{}), done: make(chan struct{})}
	for _, b := range opts.Backends {
		m.backends[b.Platform()] = b
	}
	if len(m.backends) == 0 {
		return nil, errors.New("repository: no backend")
	}
	return m, nil
}

// Start loads the initial models and, in polling mode, follows the directory until Close.
func (m *Manager) Start(ctx context.Context) error {
	names, err := m.listModels()
	if err != nil {
		return err
	}
	switch m.opts.Mode {
	case ModePoll:
		m.scan()
		go m.poll()
	case ModeExplicit:
		close(m.done)
		for _, want := range m.opts.StartupModels {
			for _, name := range names {
				if want == "*" || want == name {
					if err := m.Load(ctx, name); err != nil {
						m.opts.Logger.Warn("startup model failed to load", "model", name, "err", err)
					}
				}
			}
		}
	}
	m.ready.Store(true)
	return nil
}

// Ready reports whether the initial load has finished.
func (m *Manager) Ready() bool { return m.ready.Load() }

// Explicit reports whether load and unload calls are allowed.
func (m *Manager) Explicit() bool { return m.opts.Mode == ModeExplicit }

// Close stops polling and unloads everything; sessions are freed as their last requests finish.
func (m *Manager) Close() {
	select {
	case <-m.stop:
		return
	default:
	}
	close(m.stop)
	<-m.done
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	m.mu.Lock()
	models := m.models
	m.models = map[string]*model{}
	m.mu.Unlock()
	for _, md := range models {
		for _, v := range md.versions {
			v.retire()
		}
	}
}

func (m *Manager) poll() {
	defer close(m.done)
	t := time.NewTicker(m.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.scan()
		}
	}
}

// scan brings every model in line with the directory: new models and versions load, removed ones
// unload, changed ones reload.
func (m *Manager) scan() {
	names, err := m.listModels()
	if err != nil {
		m.opts.Logger.Error("scan model repository", "err", err)
		return
	}
	m.mu.RLock()
	var gone []string
	for name := range m.models {
		if !slices.Contains(names, name) {
			gone = append(gone, name)
		}
	}
	m.mu.RUnlock()
	for _, name := range gone {
		m.opts.Logger.Info("model removed from the repository", "model", name)
		_ = m.Unload(context.Background(), name)
	}
	for _, name := range names {
		if err := m.sync(name); err != nil {
			m.opts.Logger.Warn("model not (fully) loaded", "model", name, "err", err)
		}
	}
}

// Load loads or reloads a model from the repository. It fails with the reason when the config is
// bad or no version could be loaded.
func (m *Manager) Load(_ context.Context, name string) error {
	if !ValidModelName(name) {
		return errs.Invalid("model_name", "%q is not a model name", name)
	}
	return m.sync(name)
}

// Unload retires every version of a model. In-flight requests finish first.
func (m *Manager) Unload(_ context.Context, name string) error {
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	m.mu.Lock()
	md, ok := m.models[name]
	delete(m.models, name)
	m.mu.Unlock()
	if !ok {
		return errs.New(errs.KindNotFound, "model %q is not loaded", name)
	}
	for _, v := range md.versions {
		v.retire()
	}
	m.opts.Logger.Info("model unloaded", "model", name)
	return nil
}

// resolve finds the version a request names ("" = the newest ready one) and takes a reference,
// once the model's rule admits caller.
func (m *Manager) resolve(caller Caller, name, ver string) (*version, error) {
	v, _, err := m.lookup(caller, name, ver)
	return v, err
}

// lookup is resolve that also reports whether the model is loaded. The rule is checked in the
// same critical section as the lookup whose version the call then uses.
func (m *Manager) lookup(caller Caller, name, ver string) (*version, bool, error) {
	number, err := parseVersion(ver)
	if err != nil {
		return nil, false, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	md, ok := m.models[name]
	if !ok {
		return nil, false, notLoaded(name)
	}
	if !md.allows(caller) {
		return nil, true, refused(name)
	}
	if number == 0 {
		var best *version
		for _, v := range md.versions {
			if v.ready() && (best == nil || v.number > best.number) {
				best = v
			}
		}
		if best == nil || !best.acquire() {
			return nil, true, errs.New(errs.KindUnavailable, "model %q has no ready version", name)
		}
		return best, true, nil
	}
	v, ok := md.versions[number]
	if !ok {
		return nil, true, errs.New(errs.KindNotFound, "model %q has no version %d loaded", name, number)
	}
	if !v.acquire() {
		return nil, true, errs.New(errs.KindUnavailable, "model %q version %d is not ready: %s", name, number, cmp.Or(v.reason, "unloading"))
	}
	return v, true, nil
}
