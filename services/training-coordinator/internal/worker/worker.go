// Package worker is a training worker: it joins a job through the coordinator's rendezvous, takes
// part in one synchronous ring allreduce per step with the other members, applies the optimizer,
// and reports each step. On a failed collective it keeps the state of the last step it applied (the
// optimizer only runs after a successful allreduce, so a failed step leaves nothing to undo), joins
// again, and the new generation redoes the step from rank 0's state.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	trainingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/training/v1"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/allreduce"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/allreduce/grpcring"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/optim"
)

// tracer spans what a step's time goes to on the gradient path (the allreduce) and a generation's
// state transfer; the rest of a step is local computation.
var tracer = otel.Tracer("bourse/training-worker")

// Config wires a Worker.
type Config struct {
	ID string
	// Address is where peers reach this worker's WorkerService (its advertised host:port).
	Address string
	// JobID restricts the worker to one job ("" takes any runnable job).
	JobID       string
	Coordinator trainingv1.TrainingCoordinatorServiceClient
	Log         *slog.Logger
	MNISTDir    string
	// ExitWhenDone ends Run once the job of JobID has ended.
	ExitWhenDone bool
}

// Worker serves WorkerService (the ring's Exchange through its Hub, GetState itself) and runs the
// training loop in Run.
type Worker struct {
	*grpcring.Hub
	cfg Config

	// Owned by Run's goroutine.
	jc        *jobCtx
	stateJob  string
	stateStep int64
	params    []float32
	opt       optim.Optimizer

	mu        sync.Mutex
	curJob    string
	curGen    uint64
	cancelGen context.CancelFunc
	pub       *published // rank 0's starting state of its current generation
	pubWait   chan struct{}
}

// maxStateWait bounds how long GetState waits for this worker to have the generation's state.
const maxStateWait = time.Minute

type published struct {
	job    string
	gen    uint64
	step   int64
	params []byte
	opt    []byte
}

// New returns a worker whose ring runs over hub.
func New(cfg Config, hub *grpcring.Hub) *Worker {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Worker{Hub: hub, cfg: cfg, pubWait: make(chan struct{})}
}

// Run joins jobs and trains until ctx ends (or, with ExitWhenDone, the job has ended). It owns the
// heartbeat goroutine, which it stops before returning.
func (w *Worker) Run(ctx context.Context) error {
	hbCtx, stopHB := context.WithCancel(ctx)
	hbDone := make(chan struct{})
	go func() { defer close(hbDone); w.heartbeats(hbCtx) }()
	defer func() {
		stopHB()
		<-hbDone
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		_, _ = w.cfg.Coordinator.Leave(lctx, &trainingv1.LeaveRequest{WorkerId: w.cfg.ID})
		cancel()
	}()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		jctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		resp, err := w.cfg.Coordinator.Join(jctx, &trainingv1.JoinRequest{
			JobId: w.cfg.JobID, WorkerId: w.cfg.ID, Address: w.cfg.Address,
			StateJobId: w.stateJob, StateStep: uint64(w.stateStep), WaitTimeMs: 10_000,
		})
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if w.cfg.ExitWhenDone && status.Code(err) == codes.FailedPrecondition {
				w.cfg.Log.Info("job ended", "job", w.cfg.JobID, "reason", status.Convert(err).Message())
				return nil
			}
			w.cfg.Log.Warn("join failed", "err", err)
			sleep(ctx, backoff)
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		if !resp.GetAssigned() {
			continue
		}
		if err := w.generation(ctx, resp); err != nil && ctx.Err() == nil {
			w.cfg.Log.Warn("generation ended: rejoining", "job", resp.GetJob().GetJobId(), "generation", resp.GetGeneration(),
				"step", w.stateStep, "err", err)
		}
	}
	return ctx.Err()
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// heartbeats tells the coordinator this worker is alive, and cancels the generation in flight when
// the coordinator says it no longer stands (a member was lost), so a collective never waits for a
// peer the coordinator already knows is gone.
func (w *Worker) heartbeats(ctx context.Context) {
	interval := 500 * time.Millisecond
	for {
		w.mu.Lock()
		job, gen := w.curJob, w.curGen
		w.mu.Unlock()
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := w.cfg.Coordinator.Heartbeat(hctx, &trainingv1.HeartbeatRequest{WorkerId: w.cfg.ID, JobId: job, Generation: gen})
		cancel()
		if err == nil && resp.GetRejoin() && gen != 0 {
			w.mu.Lock()
			if w.curGen == gen && w.cancelGen != nil {
				w.cancelGen()
			}
			w.mu.Unlock()
		}
		sleep(ctx, interval)
		if ctx.Err() != nil {
			return
		}
	}
}

// generation takes part in one generation until the job tells it to rejoin or leave, or a step
// fails.
func (w *Worker) generation(ctx context.Context, a *trainingv1.JoinResponse) error {
	job := a.GetJob()
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w.mu.Lock()
	w.curJob, w.curGen, w.cancelGen = job.GetJobId(), a.GetGeneration(), cancel
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.curGen, w.cancelGen = 0, nil
		w.mu.Unlock()
	}()

	if w.jc == nil || w.jc.id != job.GetJobId() {
		jc, err := newJobCtx(job, w.cfg.MNISTDir)
		if err != nil {
			return err
		}
		w.jc = jc
	}
	jc := w.jc
	rank, world, gen := int(a.GetRank()), int(a.GetWorldSize()), a.GetGeneration()
	members := a.GetMembers()
	if len(members) != world || rank >= world {
		return fmt.Errorf("rendezvous: %d members for world size %d, rank %d", len(members), world, rank)
	}
	sess := w.Open(job.GetJobId(), gen, rank, world, members[(rank+1)%world].GetAddress())
	defer sess.Close()

	sctx, span := tracer.Start(gctx, "generation state", trace.WithAttributes(attribute.String("job", jc.id),
		attribute.Int64("generation", int64(gen)), attribute.Int("rank", rank), attribute.String("source", a.GetSource().String())))
	err := w.startState(sctx, a, jc)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(otelcodes.Error, "no starting state")
	}
	span.End()
	if err != nil {
		return err
	}
	step := int64(a.GetStartStep())
	w.cfg.Log.Info("generation started", "job", jc.id, "generation", gen, "rank", rank, "world", world, "step", step)
	ring := &allreduce.Ring{Rank: rank, Size: world, T: sess, Timeout: jc.collective}
	p := jc.m.NumParams()
	if step >= jc.total {
		// The previous generation applied the last step but its rank 0 never committed it (it died
		// between the two): finish the job from here, evaluating and checkpointing again.
		_, err := w.commit(gctx, jc, job, &trainingv1.CommitStepRequest{
			JobId: jc.id, WorkerId: w.cfg.ID, Generation: gen, Rank: uint32(rank), Step: uint64(step), Loss: job.GetLastLoss(),
		}, time.Now())
		return err
	}
	// The commit of step s runs while step s+1's gradient is computed (it only reads the
	// parameters); its answer is awaited before the allreduce, so a rejoin or leave still takes
	// effect at the same step on every member, and the gradient computed meanwhile is dropped. The
	// commit goroutine is always waited for before the generation returns.
	var pending chan commitResult
	defer func() {
		if pending != nil {
			<-pending
		}
	}()
	for step < jc.total {
		if err := gctx.Err(); err != nil {
			return fmt.Errorf("generation cancelled: %w", err)
		}
		t0 := time.Now()
		n := jc.gradient(w.params, step, rank, world)
		if pending != nil {
			r := <-pending
			pending = nil
			if r.err != nil || !r.more {
				return r.err
			}
		}
		actx, span := tracer.Start(gctx, "allreduce", trace.WithAttributes(attribute.String("job", jc.id),
			attribute.Int64("generation", int64(gen)), attribute.Int64("step", step), attribute.Int("rank", rank), attribute.Int("world", world)))
		st, err := ring.AllReduce(actx, gen, uint64(step), jc.vec)
		span.SetAttributes(attribute.Int64("bytes_sent", int64(st.BytesSent)))
		if err != nil {
			span.RecordError(err)
			span.SetStatus(otelcodes.Error, "collective failed")
		}
		span.End()
		if err != nil {
			return err
		}
		w.opt.Step(w.params, jc.vec[:p])
		step++
		w.stateJob, w.stateStep = jc.id, step
		req := &trainingv1.CommitStepRequest{
			JobId: jc.id, WorkerId: w.cfg.ID, Generation: gen, Rank: uint32(rank), Step: uint64(step),
			Loss: jc.vec[p], Samples: uint32(n), AllreduceBytes: st.BytesSent, AllreduceSeconds: st.Duration.Seconds(),
		}
		pending = make(chan commitResult, 1)
		go func(ch chan<- commitResult) {
			more, err := w.commit(gctx, jc, job, req, t0)
			ch <- commitResult{more, err}
		}(pending)
	}
	if pending != nil {
		r := <-pending
		pending = nil
		return r.err
	}
	return nil
}

type commitResult struct {
	more bool
	err  error
}

// commit reports an applied step (rank 0 first evaluates and checkpoints when the step calls for
// it) and says whether the generation goes on.
func (w *Worker) commit(ctx context.Context, jc *jobCtx, job *trainingv1.Job, req *trainingv1.CommitStepRequest, t0 time.Time) (bool, error) {
	step := int64(req.GetStep())
	if req.GetRank() == 0 {
		final := step == jc.total
		if final || step%jc.evalEvery == 0 {
			req.Evaluated, req.Accuracy = true, float32(jc.eval.Accuracy(w.params))
		}
		target := job.GetSpec().GetTargetAccuracy()
		every := int64(job.GetSpec().GetCheckpointInterval())
		if final || (every > 0 && step%every == 0) || (req.Evaluated && target > 0 && req.Accuracy >= target) {
			if err := w.upload(ctx, req.GetGeneration(), step); err != nil {
				return false, fmt.Errorf("checkpoint at step %d: %w", step, err)
			}
		}
	}
	req.StepSeconds = time.Since(t0).Seconds()
	cctx, cancel := context.WithTimeout(ctx, jc.collective+5*time.Second)
	resp, err := w.cfg.Coordinator.CommitStep(cctx, req)
	cancel()
	if err != nil {
		return false, fmt.Errorf("commit step %d: %w", step, err)
	}
	switch resp.GetAction() {
	case trainingv1.StepAction_STEP_ACTION_CONTINUE:
		return true, nil
	case trainingv1.StepAction_STEP_ACTION_REJOIN:
		return false, nil
	case trainingv1.StepAction_STEP_ACTION_LEAVE:
		w.cfg.Log.Info("job over", "job", jc.id, "step", step)
		return false, nil
	}
	return false, fmt.Errorf("commit step %d: unknown action %v", step, resp.GetAction())
}

func (w *Worker) upload(ctx context.Context, gen uint64, step int64) error {
	uctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := w.cfg.Coordinator.UploadCheckpoint(uctx, &trainingv1.UploadCheckpointRequest{
		JobId: w.jc.id, Generation: gen, Step: uint64(step),
		Params: grpcring.EncodeFloats(nil, w.params), OptimizerState: grpcring.EncodeFloats(nil, w.opt.State()),
	})
	return err
}

// startState sets the generation's starting parameters and optimizer state: rank 0 from its own
// state, the job's checkpoint or a fresh initialisation, as the coordinator says, and publishes
// them; every other rank fetches them from rank 0 before computing anything.
func (w *Worker) startState(ctx context.Context, a *trainingv1.JoinResponse, jc *jobCtx) error {
	p := jc.m.NumParams()
	opt, err := optim.New(jc.optCfg, p)
	if err != nil {
		return err
	}
	start := int64(a.GetStartStep())
	var params, optState []float32
	if a.GetRank() == 0 {
		switch a.GetSource() {
		case trainingv1.StateSource_STATE_SOURCE_OWN:
			if w.stateJob != jc.id || w.stateStep != start || len(w.params) != p {
				return fmt.Errorf("rendezvous: told to start from own state at step %d, holding %q at %d", start, w.stateJob, w.stateStep)
			}
			params, optState = w.params, w.opt.State()
		case trainingv1.StateSource_STATE_SOURCE_CHECKPOINT:
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			ck, err := w.cfg.Coordinator.GetCheckpoint(cctx, &trainingv1.GetCheckpointRequest{JobId: jc.id})
			cancel()
			if err != nil {
				return fmt.Errorf("get checkpoint: %w", err)
			}
			if int64(ck.GetStep()) != start {
				return fmt.Errorf("checkpoint is of step %d, the generation starts at %d", ck.GetStep(), start)
			}
			if params, err = grpcring.DecodeFloats(ck.GetParams()); err != nil {
				return err
			}
			if optState, err = grpcring.DecodeFloats(ck.GetOptimizerState()); err != nil {
				return err
			}
		case trainingv1.StateSource_STATE_SOURCE_INIT:
			if start != 0 {
				return fmt.Errorf("rendezvous: fresh start at step %d", start)
			}
			params = make([]float32, p)
			jc.m.Init(params, int64(jc.spec.GetSeed()))
			optState = opt.State()
		default:
			return fmt.Errorf("rendezvous: unknown state source %v", a.GetSource())
		}
		w.publish(&published{job: jc.id, gen: a.GetGeneration(), step: start,
			params: grpcring.EncodeFloats(nil, params), opt: grpcring.EncodeFloats(nil, optState)})
	} else {
		addr := a.GetMembers()[0].GetAddress()
		conn, err := w.Conn(addr)
		if err != nil {
			return err
		}
		sctx, cancel := context.WithTimeout(ctx, 2*jc.collective+30*time.Second)
		resp, err := trainingv1.NewWorkerServiceClient(conn).GetState(sctx, &trainingv1.GetStateRequest{JobId: jc.id, Generation: a.GetGeneration()})
		cancel()
		if err != nil {
			return fmt.Errorf("get state from rank 0 at %s: %w", addr, err)
		}
		if int64(resp.GetStep()) != start {
			return fmt.Errorf("rank 0's state is of step %d, the generation starts at %d", resp.GetStep(), start)
		}
		if params, err = grpcring.DecodeFloats(resp.GetParams()); err != nil {
			return err
		}
		if optState, err = grpcring.DecodeFloats(resp.GetOptimizerState()); err != nil {
			return err
		}
	}
	if len(params) != p {
		return fmt.Errorf("starting state has %d parameters, the model %d", len(params), p)
	}
	if !allreduce.IsFinite(params) {
		return errors.New("starting parameters are not finite")
	}
	if err := opt.SetState(optState); err != nil {
		return fmt.Errorf("optimizer state: %w", err)
	}
	w.params, w.opt = params, opt
	w.stateJob, w.stateStep = jc.id, start
	return nil
}

func (w *Worker) publish(p *published) {
	w.mu.Lock()
	w.pub = p
	close(w.pubWait)
	w.pubWait = make(chan struct{})
	w.mu.Unlock()
}

// GetState serves rank 0's starting state of a generation to the other members, waiting (within
// the call's deadline) until this worker has it. A request for an older generation is refused.
func (w *Worker) GetState(ctx context.Context, req *trainingv1.GetStateRequest) (*trainingv1.GetStateResponse, error) {
	// Bounded here too: a caller without a deadline must not hold a handler forever.
	ctx, cancel := context.WithTimeout(ctx, maxStateWait)
	defer cancel()
	for {
		w.mu.Lock()
		p, ch := w.pub, w.pubWait
		w.mu.Unlock()
		if p != nil && p.job == req.GetJobId() {
			switch {
			case p.gen == req.GetGeneration():
				return &trainingv1.GetStateResponse{Step: uint64(p.step), Params: p.params, OptimizerState: p.opt}, nil
			case p.gen > req.GetGeneration():
				return nil, status.Errorf(codes.FailedPrecondition, "generation: %d is stale (this worker is in %d)", req.GetGeneration(), p.gen)
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
}
