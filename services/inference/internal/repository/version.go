package repository

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/bourse-dev/bourse/services/inference/internal/backend"
	"github.com/bourse-dev/bourse/services/inference/internal/batching"
	"github.com/bourse-dev/bourse/services/inference/internal/metrics"
	"github.com/bourse-dev/bourse/services/inference/internal/modelconfig"
	"github.com/bourse-dev/bourse/services/inference/internal/tensor"
)

// State of a model version, as the repository index reports it.
type State string

// States a version can be in.
const (
	StateReady       State = "READY"
	StateUnavailable State = "UNAVAILABLE"
)

// version is one loaded (or failed) model version. It is reference counted: requests hold a
// reference while they run, and a retired version frees its session when the last one is released,
// so replacing or unloading a version never cuts a request short.
type version struct {
	model       string
	number      int64
	label       string
	cfg         modelconfig.Config
	fingerprint string
	reason      string // why the version is not ready; empty when it is

	session backend.Session
	exec    executor // a batching.Batcher with dynamic batching, a batching.Direct without
	metrics *metrics.Metrics

	mu      sync.Mutex
	refs    int
	retired bool
	freed   chan struct{} // closed once the session is closed
}

func newVersion(model string, number int64, cfg modelconfig.Config, fingerprint string, m *metrics.Metrics) *version {
	return &version{model: model, number: number, label: strconv.FormatInt(number, 10), cfg: cfg,
		fingerprint: fingerprint, metrics: m, freed: make(chan struct{})}
}

func (v *version) ready() bool { return v.session != nil }

func (v *version) state() State {
	if v.ready() {
		return StateReady
	}
	return StateUnavailable
}

// executor runs validated requests on a session behind a bounded queue.
type executor interface {
	Submit(ctx context.Context, inputs []tensor.Tensor, rows int64) ([]tensor.Tensor, error)
	Close()
}

// start wires the execution path of a loaded session.
func (v *version) start(s backend.Session) {
	v.session = s
	v.metrics.SessionOpened()
	cfg := batching.Config{
		MaxBatchSize: v.cfg.MaxBatchSize,
		MaxQueueSize: v.cfg.MaxQueueSize,
		Instances:    v.cfg.Instances,
		OnQueued:     func(w time.Duration) { v.metrics.Queued(v.model, v.label, w) },
		OnExecute:    func(rows int, d time.Duration) { v.metrics.Execution(v.model, v.label, rows, d) },
	}
	b := v.cfg.DynamicBatching
	if b == nil {
		v.exec = batching.NewDirect(cfg, s.Run)
		return
	}
	cfg.MaxQueueDelay = time.Duration(b.MaxQueueDelay)
	cfg.Preferred = b.PreferredBatchSizes
	cfg.MaxQueueSize = b.MaxQueueSize
	cfg.StopWhenAllQueued = b.StopWhenAllQueued
	v.exec = batching.New(cfg, s.Run)
}

// run executes one validated request.
func (v *version) run(ctx context.Context, inputs []tensor.Tensor, rows int64) ([]tensor.Tensor, error) {
	return v.exec.Submit(ctx, inputs, rows)
}

// acquire takes a reference; false if the version is retired or not ready.
func (v *version) acquire() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.retired || !v.ready() {
		return false
	}
	v.refs++
	return true
}

func (v *version) release() {
	v.mu.Lock()
	v.refs--
	free := v.retired && v.refs == 0
	v.mu.Unlock()
	if free {
		v.free()
	}
}

// retire stops new requests; the session is freed now or when the last request releases it.
func (v *version) retire() {
	v.mu.Lock()
	if v.retired {
		v.mu.Unlock()
		return
	}
	v.retired = true
	free := v.refs == 0
	v.mu.Unlock()
	if free {
		v.free()
	}
}

func (v *version) free() {
	if v.exec != nil {
		v.exec.Close()
	}
	if v.session != nil {
		_ = v.session.Close()
		v.metrics.SessionClosed()
	}
	close(v.freed)
}
