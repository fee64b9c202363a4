package coordinator

import (
	"context"
	"fmt"
	"time"
)

// ExportFunc writes a succeeded job's final model (its checkpoint at path) into the inference model
// repository as a new version of job.Spec.ExportModel and has inference load it; it returns the
// version.
type ExportFunc func(ctx context.Context, job Record, shape Shape, path string) (int64, error)

// exportTimeout bounds one export (ONNX writing, fsyncs, the load RPC).
const exportTimeout = 2 * time.Minute

// pendingExport reports whether j succeeded with an export asked for and not yet done.
func (j *job) pendingExport() bool {
	return j.Status == StatusSucceeded && j.Spec.ExportModel != "" && j.ExportedVersion == 0 && j.ExportError == ""
}

// startExport runs j's export on a goroutine owned by the coordinator (Close waits for it); the job
// is already succeeded, and its progress stream stays open until the export is reported. Called
// with c.mu held.
func (c *Coordinator) startExport(j *job) {
	if c.cfg.Export == nil || !j.pendingExport() || j.exporting {
		return
	}
	j.exporting = true
	rec, shape, path := j.Record, j.shape, j.CheckpointPath
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		ctx, cancel := context.WithTimeout(c.bgCtx, exportTimeout)
		v, err := c.cfg.Export(ctx, rec, shape, path)
		cancel()
		c.mu.Lock()
		defer c.mu.Unlock()
		j.exporting = false
		if c.bgCtx.Err() != nil {
			// Shutting down: the next start exports it again (nothing was recorded).
			return
		}
		ev := &StatusEvent{Status: j.Status, ModelPath: path}
		if err != nil {
			j.ExportError = err.Error()
			ev.ExportError, ev.Reason = j.ExportError, "export failed"
			c.cfg.Log.Error("export failed", "job", j.ID, "model", j.Spec.ExportModel, "err", err)
		} else {
			j.ExportedVersion = v
			ev.ExportedModel, ev.ExportedVersion = j.Spec.ExportModel, v
			ev.Reason = fmt.Sprintf("exported as %s version %d", j.Spec.ExportModel, v)
			c.cfg.Log.Info("model exported", "job", j.ID, "model", j.Spec.ExportModel, "version", v)
		}
		_ = c.save(j)
		j.events.add(c.cfg.Now(), Event{Status: ev})
		c.notify()
	}()
}

// Close stops the coordinator's own goroutines (exports in flight) and waits for them.
func (c *Coordinator) Close() {
	c.bgCancel()
	c.bg.Wait()
}
