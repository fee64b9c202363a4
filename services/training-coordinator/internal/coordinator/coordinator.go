package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/checkpoint"
)

// MaxGenerationFailures is how many generations in a row may fail at the same step before the job
// fails: a step that can never complete (a worker that always sends NaN) ends instead of looping.
const MaxGenerationFailures = 5

// Config wires a Coordinator.
type Config struct {
	Store       *Store
	Checkpoints checkpoint.Store
	DataInfo    DataInfo
	Log         *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// HeartbeatInterval is what workers are told to use (default 500ms).
	HeartbeatInterval time.Duration
	// Export, when set, exports the final model of jobs that ask for it (Spec.ExportModel).
	Export ExportFunc
}

// Member is a worker's place in a generation.
type Member struct {
	WorkerID string
	Address  string
	Rank     int
}

// Job is a job as the API shows it.
type Job struct {
	Record
	Members []Member
}

// Coordinator holds every job and worker. One mutex guards everything; long polls (Join, the
// commits of ranks other than 0, progress streams) wait on changed, which is closed and replaced
// on every change. The goroutine of Run, started and stopped by the owner, expires workers and forms
// generations on a timer.
type Coordinator struct {
	cfg Config

	bgCtx    context.Context
	bgCancel context.CancelFunc
	bg       sync.WaitGroup // exports in flight

	mu      sync.Mutex
	changed chan struct{}
	jobs    map[string]*job
	order   []string // job ids by creation
	workers map[string]*worker
}

type job struct {
	Record
	shape   Shape
	members []Member
	// active: the generation in members is running; false while a new one is being formed.
	active    bool
	brokenAt  time.Time
	decisions map[int64]Action // rank 0's answer per step, for the current generation
	stopping  bool
	// belowSince is when the job last found fewer than min_workers alive (zero: not below).
	belowSince time.Time
	failedAt   int64 // step of the last failed generation
	failures   int   // generations failed in a row at failedAt
	lastError  string
	events     eventLog
	exporting  bool
}

type worker struct {
	id, addr  string
	lastSeen  time.Time
	job       string // the job it is attached to ("" none)
	joining   bool   // waiting in Join
	wantJob   string // Join's job filter
	stateJob  string
	stateStep int64
	gen       uint64 // generation it is a member of (0 none)
	assign    *Assignment
}

// New loads every job from the store.
func New(ctx context.Context, cfg Config) (*Coordinator, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 500 * time.Millisecond
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	c := &Coordinator{cfg: cfg, changed: make(chan struct{}), jobs: map[string]*job{}, workers: map[string]*worker{}}
	c.bgCtx, c.bgCancel = context.WithCancel(context.Background())
	recs, err := cfg.Store.Load(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		sh, err := r.Spec.Validate(cfg.DataInfo)
		if err != nil {
			// The spec was valid when it was accepted; a dataset that has gone is the job's failure,
			// not the coordinator's.
			cfg.Log.Warn("job's spec no longer resolves", "job", r.ID, "err", err)
			if r.Status.Runnable() {
				r.Status, r.Reason = StatusFailed, "spec no longer resolves: "+err.Error()
			}
		}
		j := &job{Record: r, shape: sh, decisions: map[int64]Action{}}
		c.jobs[r.ID] = j
		c.order = append(c.order, r.ID)
	}
	c.mu.Lock()
	for _, j := range c.jobs {
		// An export the previous process did not finish.
		c.startExport(j)
	}
	c.mu.Unlock()
	cfg.Log.Info("jobs loaded", "jobs", len(recs))
	return c, nil
}

// Run expires silent workers and forms generations until ctx ends.
func (c *Coordinator) Run(ctx context.Context, tick time.Duration) {
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.mu.Lock()
			c.expire(c.cfg.Now())
			c.formAll(c.cfg.Now())
			c.mu.Unlock()
		}
	}
}

func (c *Coordinator) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// save persists j's record; a failed write is logged and returned (the caller decides).
func (c *Coordinator) save(j *job) error {
	j.Updated = c.cfg.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.cfg.Store.Save(ctx, j.Record); err != nil {
		c.cfg.Log.Error("saving job", "job", j.ID, "err", err)
		return errs.Wrap(errs.KindUnavailable, err, "saving job %s", j.ID)
	}
	return nil
}

func (j *job) view() Job {
	return Job{Record: j.Record, Members: slices.Clone(j.members)}
}

// StartJob creates a job, or answers the existing one for a repeated id with the same spec.
func (c *Coordinator) StartJob(id string, spec Spec) (Job, bool, error) {
	if id == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		id = "job-" + hex.EncodeToString(b)
	}
	if err := ValidJobID(id); err != nil {
		return Job{}, false, err
	}
	spec = spec.withDefaults()
	sh, err := spec.Validate(c.cfg.DataInfo)
	if err != nil {
		return Job{}, false, err
	}
	if spec.ExportModel != "" && c.cfg.Export == nil {
		return Job{}, false, errs.New(errs.KindFailedPrecondition, "spec.export_model: this coordinator exports nowhere (start it with --model-repository)")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.jobs[id]; ok {
		if reflect.DeepEqual(old.Spec, spec) {
			return old.view(), true, nil
		}
		return Job{}, false, errs.New(errs.KindAlreadyExists, "job %q exists with another spec", id)
	}
	now := c.cfg.Now()
	j := &job{Record: Record{ID: id, Spec: spec, Status: StatusPending, TotalSteps: sh.TotalSteps, Created: now}, shape: sh, decisions: map[int64]Action{}}
	if err := c.save(j); err != nil {
		return Job{}, false, err
	}
	c.jobs[id] = j
	c.order = append(c.order, id)
	j.events.add(now, Event{Status: &StatusEvent{Status: StatusPending}})
	c.cfg.Log.Info("job started", "job", id, "dataset", spec.Dataset, "model", spec.ModelKind, "steps", sh.TotalSteps,
		"params", sh.NumParams, "min_workers", spec.MinWorkers, "max_workers", spec.MaxWorkers)
	c.formAll(now)
	c.notify()
	return j.view(), false, nil
}

// GetJob returns a job.
func (c *Coordinator) GetJob(id string) (Job, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	j, ok := c.jobs[id]
	if !ok {
		return Job{}, errs.New(errs.KindNotFound, "job %q not found", id)
	}
	return j.view(), nil
}

// ListJobs returns up to limit jobs, newest first.
func (c *Coordinator) ListJobs(limit int) []Job {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Job
	for i := len(c.order) - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, c.jobs[c.order[i]].view())
	}
	return out
}

// StopJob stops a job: at once when no generation runs, else at rank 0's next commit.
func (c *Coordinator) StopJob(id string) (Job, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	j, ok := c.jobs[id]
	if !ok {
		return Job{}, errs.New(errs.KindNotFound, "job %q not found", id)
	}
	if !j.Status.Runnable() {
		return j.view(), nil
	}
	if j.active {
		j.stopping = true
		return j.view(), nil
	}
	c.finish(j, StatusStopped, "stopped by request")
	return j.view(), nil
}

// ResumeJob makes a stopped or failed job runnable again, from its last checkpoint (verified now:
// a corrupted or mismatched one is FailedPrecondition) or, if none, from the start.
func (c *Coordinator) ResumeJob(id string) (Job, error) {
	c.mu.Lock()
	j, ok := c.jobs[id]
	if !ok {
		c.mu.Unlock()
		return Job{}, errs.New(errs.KindNotFound, "job %q not found", id)
	}
	switch {
	case j.Status.Runnable():
		defer c.mu.Unlock()
		return j.view(), nil
	case j.Status == StatusSucceeded:
		c.mu.Unlock()
		return Job{}, errs.New(errs.KindFailedPrecondition, "job %q already succeeded", id)
	}
	path, step := j.CheckpointPath, j.CheckpointStep
	c.mu.Unlock()
	if step > 0 {
		if _, err := checkpoint.Read(path, id, j.shape.NumParams); err != nil {
			return Job{}, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if j.Status.Runnable() {
		return j.view(), nil
	}
	now := c.cfg.Now()
	j.Status, j.Reason, j.Step = StatusPending, "", j.CheckpointStep
	j.stopping, j.failures, j.belowSince, j.active = false, 0, time.Time{}, false
	if err := c.save(j); err != nil {
		return Job{}, err
	}
	j.events.add(now, Event{Status: &StatusEvent{Status: StatusPending, Reason: "resumed"}})
	c.cfg.Log.Info("job resumed", "job", id, "from_step", j.Step)
	c.formAll(now)
	c.notify()
	return j.view(), nil
}

// finish ends a job; its workers are detached (their next commit or heartbeat tells them to leave).
func (c *Coordinator) finish(j *job, st Status, reason string) {
	now := c.cfg.Now()
	j.Status, j.Reason, j.active, j.stopping = st, reason, false, false
	j.members = nil
	for _, w := range c.workers {
		if w.job == j.ID {
			w.job, w.gen, w.assign = "", 0, nil
		}
	}
	_ = c.save(j)
	ev := &StatusEvent{Status: st, Reason: reason}
	if st == StatusSucceeded {
		ev.ModelPath = j.CheckpointPath
	}
	j.events.add(now, Event{Status: ev})
	c.cfg.Log.Info("job ended", "job", j.ID, "status", st.String(), "reason", reason, "step", j.Step, "accuracy", j.LastAccuracy)
	c.startExport(j)
	c.notify()
}

// Watch calls fn with each of the job's events after seq, then with each new one, until the job
// has ended and every event was delivered, ctx ends, or fn fails.
func (c *Coordinator) Watch(ctx context.Context, id string, seq uint64, fn func(Event) error) error {
	for {
		c.mu.Lock()
		j, ok := c.jobs[id]
		if !ok {
			c.mu.Unlock()
			return errs.New(errs.KindNotFound, "job %q not found", id)
		}
		evs, done, ch := j.events.since(seq), !j.Status.Runnable() && !j.exporting, c.changed
		c.mu.Unlock()
		for _, e := range evs {
			if err := fn(e); err != nil {
				return err
			}
			seq = e.Seq
		}
		if len(evs) == 0 && done {
			return nil
		}
		if len(evs) > 0 {
			continue
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
