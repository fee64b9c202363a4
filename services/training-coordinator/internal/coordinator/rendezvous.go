package coordinator

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// Action is a member's instruction after a step.
type Action int

const (
	Continue Action = 1
	// Rejoin: membership changes after this step; every member calls Join again.
	Rejoin Action = 2
	// Leave: the job has ended.
	Leave Action = 3
)

// Source is where rank 0 takes a generation's starting state from.
type Source int

const (
	SourceOwn        Source = 1
	SourceCheckpoint Source = 2
	SourceInit       Source = 3
)

// Assignment is a worker's place in a new generation.
type Assignment struct {
	Job               Job
	Generation        uint64
	Rank, World       int
	Members           []Member
	StartStep         int64
	Source            Source
	HeartbeatInterval time.Duration
}

// JoinRequest is a worker asking for a place in a job.
type JoinRequest struct {
	JobID, WorkerID, Address string
	StateJob                 string
	StateStep                int64
	Wait                     time.Duration
}

// MaxJoinWait bounds one Join long poll.
const MaxJoinWait = 60 * time.Second

// Join is the rendezvous. It returns the worker's assignment once a generation including it forms,
// or ok=false after the wait.
func (c *Coordinator) Join(ctx context.Context, req JoinRequest) (a Assignment, ok bool, err error) {
	if req.WorkerID == "" {
		return a, false, errs.Invalid("worker_id", "required")
	}
	if req.Address == "" {
		return a, false, errs.Invalid("address", "required: the host:port peers reach this worker at")
	}
	wait := req.Wait
	if wait <= 0 {
		wait = 10 * time.Second
	}
	timer := time.NewTimer(min(wait, MaxJoinWait))
	defer timer.Stop()

	c.mu.Lock()
	defer c.mu.Unlock()
	if req.JobID != "" {
		j, ok := c.jobs[req.JobID]
		if !ok {
			return a, false, errs.New(errs.KindNotFound, "job %q not found", req.JobID)
		}
		if !j.Status.Runnable() {
			return a, false, errs.New(errs.KindFailedPrecondition, "job %q is %s: %s", j.ID, j.Status, j.Reason)
		}
	}
	now := c.cfg.Now()
	w := c.worker(req.WorkerID, now)
	w.addr = req.Address
	if w.gen != 0 {
		// A member asking to join again has left its generation: its collective failed.
		if j := c.jobs[w.job]; j != nil && j.active && j.Generation == w.gen {
			c.breakGen(j, fmt.Sprintf("worker %s left generation %d", w.id, w.gen), true)
		}
	}
	w.gen, w.assign, w.joining, w.wantJob = 0, nil, true, req.JobID
	w.stateJob, w.stateStep = req.StateJob, req.StateStep
	if w.job != "" && (req.JobID != "" && w.job != req.JobID || !c.runnable(w.job)) {
		w.job = ""
	}
	c.formAll(now)
	c.notify()
	for {
		if w.assign != nil {
			a := *w.assign
			return a, true, nil
		}
		if cur, ok := c.workers[w.id]; !ok || cur != w {
			return a, false, errs.New(errs.KindUnavailable, "worker %s was removed (missed heartbeats)", w.id)
		}
		if req.JobID != "" && !c.runnable(req.JobID) {
			j := c.jobs[req.JobID]
			return a, false, errs.New(errs.KindFailedPrecondition, "job %q is %s: %s", j.ID, j.Status, j.Reason)
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			c.mu.Lock()
			return a, false, nil
		case <-ctx.Done():
			c.mu.Lock()
			return a, false, ctx.Err()
		}
		c.mu.Lock()
	}
}

func (c *Coordinator) runnable(id string) bool {
	j, ok := c.jobs[id]
	return ok && j.Status.Runnable()
}

func (c *Coordinator) worker(id string, now time.Time) *worker {
	w, ok := c.workers[id]
	if !ok {
		w = &worker{id: id}
		c.workers[id] = w
	}
	w.lastSeen = now
	return w
}

// Heartbeat records that a worker is alive and tells it whether its generation still stands.
func (c *Coordinator) Heartbeat(workerID, jobID string, gen uint64) (rejoin bool, err error) {
	if workerID == "" {
		return false, errs.Invalid("worker_id", "required")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.worker(workerID, c.cfg.Now())
	if gen == 0 {
		return false, nil
	}
	j := c.jobs[jobID]
	return j == nil || !j.active || j.Generation != gen || w.gen != gen, nil
}

// Leave removes a worker at once.
func (c *Coordinator) Leave(workerID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w, ok := c.workers[workerID]; ok {
		c.remove(w, "left")
		c.formAll(c.cfg.Now())
		c.notify()
	}
}

func (c *Coordinator) remove(w *worker, why string) {
	delete(c.workers, w.id)
	if j := c.jobs[w.job]; j != nil && j.active && w.gen == j.Generation {
		c.breakGen(j, fmt.Sprintf("worker %s %s", w.id, why), true)
	}
	c.cfg.Log.Info("worker removed", "worker", w.id, "job", w.job, "why", why)
}

// expire removes workers silent for longer than their job's heartbeat timeout.
func (c *Coordinator) expire(now time.Time) {
	for _, w := range c.workers {
		timeout := DefaultHeartbeat
		if j := c.jobs[w.job]; j != nil {
			timeout = j.Spec.Heartbeat
		}
		if now.Sub(w.lastSeen) > timeout {
			c.remove(w, fmt.Sprintf("missed heartbeats for %v", now.Sub(w.lastSeen).Round(time.Millisecond)))
			c.notify()
		}
	}
}

// breakGen ends j's running generation; failure counts it against the step it was at.
func (c *Coordinator) breakGen(j *job, reason string, failure bool) {
	if !j.active {
		return
	}
	j.active, j.brokenAt = false, c.cfg.Now()
	if failure {
		if j.failedAt == j.Step {
			j.failures++
		} else {
			j.failedAt, j.failures = j.Step, 1
		}
		j.lastError = reason
		c.cfg.Log.Warn("generation failed", "job", j.ID, "generation", j.Generation, "step", j.Step, "reason", reason, "failures_at_step", j.failures)
	}
	c.notify()
}

func (c *Coordinator) formAll(now time.Time) {
	// Attach idle joiners to runnable jobs, oldest first, up to max_workers each.
	for _, id := range c.order {
		j := c.jobs[id]
		if !j.Status.Runnable() {
			continue
		}
		attached := c.attached(id)
		for _, w := range c.sortedWorkers() {
			if len(attached) >= j.Spec.MaxWorkers {
				break
			}
			if w.job == "" && w.joining && (w.wantJob == "" || w.wantJob == id) {
				w.job = id
				attached = append(attached, w)
			}
		}
		c.form(j, now)
	}
}

func (c *Coordinator) sortedWorkers() []*worker {
	ws := make([]*worker, 0, len(c.workers))
	for _, w := range c.workers {
		ws = append(ws, w)
	}
	slices.SortFunc(ws, func(a, b *worker) int { return strings.Compare(a.id, b.id) })
	return ws
}

func (c *Coordinator) attached(id string) []*worker {
	var out []*worker
	for _, w := range c.sortedWorkers() {
		if w.job == id {
			out = append(out, w)
		}
	}
	return out
}

// form starts a new generation of j when every attached worker is waiting in Join (or the stragglers
// had a collective timeout to notice) and there are at least min_workers; below min it waits, at
// most wait_timeout once the job has run, then fails.
func (c *Coordinator) form(j *job, now time.Time) {
	if j.active || !j.Status.Runnable() {
		return
	}
	if j.failures >= MaxGenerationFailures {
		c.finish(j, StatusFailed, fmt.Sprintf("step %d failed in %d generations in a row; last: %s", j.failedAt+1, j.failures, j.lastError))
		return
	}
	attached := c.attached(j.ID)
	var ready []*worker
	for _, w := range attached {
		if w.joining && w.gen == 0 {
			ready = append(ready, w)
		}
	}
	if len(attached) < j.Spec.MinWorkers {
		if j.Status == StatusRunning {
			j.Status, j.belowSince = StatusWaiting, now
			j.events.add(now, Event{Status: &StatusEvent{Status: StatusWaiting,
				Reason: fmt.Sprintf("%d worker(s) alive, below min_workers %d", len(attached), j.Spec.MinWorkers)}})
			c.cfg.Log.Warn("job below min workers: waiting", "job", j.ID, "alive", len(attached), "min_workers", j.Spec.MinWorkers, "wait_timeout", j.Spec.WaitTimeout)
			c.notify()
		}
		if j.Status == StatusWaiting && now.Sub(j.belowSince) > j.Spec.WaitTimeout {
			c.finish(j, StatusFailed, fmt.Sprintf("only %d worker(s) alive, below min_workers %d, for %v", len(attached), j.Spec.MinWorkers, j.Spec.WaitTimeout))
		}
		return
	}
	if len(ready) < len(attached) {
		// Members of the broken generation are still finishing their step; they come back once their
		// collective fails, within its timeout. One that does not is left behind.
		if j.brokenAt.IsZero() || now.Sub(j.brokenAt) < 2*j.Spec.Collective || len(ready) < j.Spec.MinWorkers {
			return
		}
		for _, w := range attached {
			if !(w.joining && w.gen == 0) {
				w.job = ""
			}
		}
	}
	if len(ready) > j.Spec.MaxWorkers {
		ready = ready[:j.Spec.MaxWorkers]
	}
	// Rank 0 holds the most advanced state of this job; the others follow in id order.
	best := 0
	for i, w := range ready {
		if w.stateJob == j.ID && (ready[best].stateJob != j.ID || w.stateStep > ready[best].stateStep) {
			best = i
		}
	}
	ranks := append([]*worker{ready[best]}, append(slices.Clone(ready[:best]), ready[best+1:]...)...)
	src, start := SourceInit, int64(0)
	switch r0 := ranks[0]; {
	case r0.stateJob == j.ID && r0.stateStep > 0 && r0.stateStep >= j.CheckpointStep:
		src, start = SourceOwn, r0.stateStep
	case j.CheckpointStep > 0:
		src, start = SourceCheckpoint, j.CheckpointStep
	}
	j.Generation++
	j.Step = start
	j.members = make([]Member, len(ranks))
	for i, w := range ranks {
		j.members[i] = Member{WorkerID: w.id, Address: w.addr, Rank: i}
	}
	j.active, j.brokenAt, j.belowSince = true, time.Time{}, time.Time{}
	j.decisions = map[int64]Action{}
	prev := j.Status
	j.Status = StatusRunning
	_ = c.save(j)
	a := Assignment{Job: j.view(), Generation: j.Generation, World: len(ranks), Members: slices.Clone(j.members),
		StartStep: start, Source: src, HeartbeatInterval: c.cfg.HeartbeatInterval}
	for i, w := range ranks {
		wa := a
		wa.Rank = i
		w.gen, w.joining, w.assign = j.Generation, false, &wa
	}
	j.events.add(now, Event{Membership: &MembershipEvent{Generation: j.Generation, Members: slices.Clone(j.members), Step: start}})
	if prev != StatusRunning {
		j.events.add(now, Event{Status: &StatusEvent{Status: StatusRunning}})
	}
	c.cfg.Log.Info("generation formed", "job", j.ID, "generation", j.Generation, "world", len(ranks), "start_step", start,
		"source", src, "rank0", ranks[0].id)
	c.notify()
}

// CommitRequest is a member's report of an applied step.
type CommitRequest struct {
	JobID, WorkerID  string
	Generation       uint64
	Rank             int
	Step             int64
	Loss             float32
	Evaluated        bool
	Accuracy         float64
	AllreduceBytes   uint64
	AllreduceSeconds float64
	StepSeconds      float64
}

// CommitStep records a step and answers what the member does next. Rank 0 decides for the step;
// the other members wait for that decision (at most the collective timeout), so all of a generation
// get the same answer.
func (c *Coordinator) CommitStep(ctx context.Context, r CommitRequest) (Action, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	j, ok := c.jobs[r.JobID]
	if !ok {
		return 0, errs.New(errs.KindNotFound, "job %q not found", r.JobID)
	}
	now := c.cfg.Now()
	w := c.worker(r.WorkerID, now)
	if !j.Status.Runnable() {
		return Leave, nil
	}
	if !j.active || r.Generation != j.Generation || w.gen != r.Generation {
		if d, ok := j.decisions[r.Step]; ok && r.Generation == j.Generation && w.gen == r.Generation {
			return d, nil
		}
		return Rejoin, nil
	}
	if r.Rank < 0 || r.Rank >= len(j.members) || j.members[r.Rank].WorkerID != r.WorkerID {
		return 0, errs.Invalid("rank", "%d is not worker %s's rank in generation %d", r.Rank, r.WorkerID, r.Generation)
	}
	if r.Step <= 0 || r.Step > j.TotalSteps {
		return 0, errs.Invalid("step", "%d is outside 1-%d", r.Step, j.TotalSteps)
	}
	w.stateJob, w.stateStep = j.ID, r.Step
	if r.Rank == 0 {
		if d, ok := j.decisions[r.Step]; ok {
			return d, nil
		}
		d := c.decide(j, r, now)
		j.decisions[r.Step] = d
		delete(j.decisions, r.Step-3)
		switch d {
		case Rejoin:
			c.breakGen(j, "membership change", false)
		case Leave:
			// decide has finished the job.
		}
		c.notify()
		return d, nil
	}
	timer := time.NewTimer(j.Spec.Collective)
	defer timer.Stop()
	for {
		if d, ok := j.decisions[r.Step]; ok {
			return d, nil
		}
		if !j.Status.Runnable() {
			return Leave, nil
		}
		if !j.active || j.Generation != r.Generation {
			return Rejoin, nil
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
			c.mu.Lock()
		case <-timer.C:
			c.mu.Lock()
			if d, ok := j.decisions[r.Step]; ok {
				return d, nil
			}
			if j.active && j.Generation == r.Generation {
				c.breakGen(j, fmt.Sprintf("rank 0 did not commit step %d within %v", r.Step, j.Spec.Collective), true)
			}
			return Rejoin, nil
		case <-ctx.Done():
			c.mu.Lock()
			return 0, ctx.Err()
		}
	}
}

// decide records rank 0's step and chooses what every member does next.
func (c *Coordinator) decide(j *job, r CommitRequest, now time.Time) Action {
	j.Step, j.LastLoss = r.Step, r.Loss
	if r.Step > j.failedAt {
		j.failures = 0
	}
	ev := &StepEvent{Step: r.Step, Loss: r.Loss, AllreduceBytes: r.AllreduceBytes, AllreduceSeconds: r.AllreduceSeconds,
		OptimumBytes: optimumBytes(j.shape.NumParams+1, len(j.members))}
	if r.StepSeconds > 0 {
		ev.SamplesPerSecond = float64(j.Spec.BatchSize) / r.StepSeconds
	}
	j.events.add(now, Event{Step: ev})
	if r.Evaluated {
		j.LastAccuracy = r.Accuracy
		j.events.add(now, Event{Eval: &EvalEvent{Step: r.Step, Accuracy: r.Accuracy}})
	}
	target := j.Spec.TargetAccuracy
	switch {
	case j.stopping:
		c.finish(j, StatusStopped, "stopped by request")
		return Leave
	case r.Evaluated && target > 0 && r.Accuracy >= target:
		c.finish(j, StatusSucceeded, fmt.Sprintf("accuracy %.4f reached the target %.4f at step %d", r.Accuracy, target, r.Step))
		return Leave
	case r.Step >= j.TotalSteps:
		if target > 0 && j.LastAccuracy < target {
			c.finish(j, StatusFailed, fmt.Sprintf("accuracy %.4f after the last step is below the target %.4f", j.LastAccuracy, target))
		} else {
			c.finish(j, StatusSucceeded, fmt.Sprintf("%d steps done, accuracy %.4f", r.Step, j.LastAccuracy))
		}
		return Leave
	case c.pendingJoiners(j):
		return Rejoin
	}
	return Continue
}

// pendingJoiners reports whether a worker waits to join j and there is room for it.
func (c *Coordinator) pendingJoiners(j *job) bool {
	if len(j.members) >= j.Spec.MaxWorkers {
		return false
	}
	for _, w := range c.workers {
		if w.joining && w.gen == 0 && (w.job == j.ID || w.job == "" && (w.wantJob == "" || w.wantJob == j.ID)) {
			return true
		}
	}
	return false
}

func optimumBytes(n, size int) uint64 {
	if size <= 1 {
		return 0
	}
	return uint64(2 * (size - 1) * n * 4 / size)
}
