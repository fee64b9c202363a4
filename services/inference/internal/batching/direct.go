package batching

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/bourse-dev/bourse/services/inference/internal/tensor"
)

// Direct runs every request alone, at most Instances at once, with at most MaxQueueSize requests
// waiting for an instance: the execution path of a model without dynamic batching. It starts no
// goroutines; each request runs on its caller's.
type Direct struct {
	cfg     Config
	exec    ExecFunc
	slots   chan struct{}
	waiting atomic.Int64
}

// NewDirect bounds exec by cfg's Instances and MaxQueueSize; the batching fields are ignored.
func NewDirect(cfg Config, exec ExecFunc) *Direct {
	cfg.MaxQueueSize = max(cfg.MaxQueueSize, 1)
	cfg.Instances = max(cfg.Instances, 1)
	return &Direct{cfg: cfg, exec: exec, slots: make(chan struct{}, cfg.Instances)}
}

// Submit runs one request once an instance is free, or refuses it with ErrQueueFull when
// MaxQueueSize requests are already waiting.
func (d *Direct) Submit(ctx context.Context, inputs []tensor.Tensor, rows int64) ([]tensor.Tensor, error) {
	queued := time.Now()
	select {
	case d.slots <- struct{}{}:
	default:
		if d.waiting.Add(1) > int64(d.cfg.MaxQueueSize) {
			d.waiting.Add(-1)
			return nil, ErrQueueFull
		}
		select {
		case d.slots <- struct{}{}:
			d.waiting.Add(-1)
		case <-ctx.Done():
			d.waiting.Add(-1)
			return nil, ctx.Err()
		}
	}
	defer func() { <-d.slots }()
	start := time.Now()
	if d.cfg.OnQueued != nil {
		d.cfg.OnQueued(start.Sub(queued))
	}
	out, err := d.exec(inputs)
	if d.cfg.OnExecute != nil {
		d.cfg.OnExecute(int(max(rows, 1)), time.Since(start))
	}
	return out, err
}

// Close is a no-op: requests run on their callers' goroutines, and the model version's reference
// count keeps the session open until the last one returns.
func (d *Direct) Close() {}
