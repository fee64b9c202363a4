package cli

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	trainingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/training/v1"
)

const coordinator = "training-coordinator"

// trainOptions are `bourse train`'s flags.
type trainOptions struct {
	jobID, dataset, model, hidden, optimizer string
	lr, momentum, target                     float32
	batch, epochs, minWorkers, maxWorkers    uint32
	trainLimit, testLimit                    uint32
	steps, seed, checkpointEvery, evalEvery  uint64
	workers                                  int
	workerBin, workerKeyFile, plot, export   string
	detach                                   bool
}

func (o *trainOptions) spec() (*trainingv1.JobSpec, error) {
	kind := map[string]trainingv1.ModelKind{"mlp": trainingv1.ModelKind_MODEL_KIND_MLP, "logistic": trainingv1.ModelKind_MODEL_KIND_LOGISTIC,
		"logreg": trainingv1.ModelKind_MODEL_KIND_LOGISTIC}[o.model]
	if kind == 0 {
		return nil, usageError("--model %q: want mlp or logistic", o.model)
	}
	var hidden []uint32
	if kind == trainingv1.ModelKind_MODEL_KIND_MLP && o.hidden != "" {
		for _, h := range strings.Split(o.hidden, ",") {
			n, err := strconv.ParseUint(strings.TrimSpace(h), 10, 32)
			if err != nil || n == 0 {
				return nil, usageError("--hidden %q: want layer widths like 256,128", o.hidden)
			}
			hidden = append(hidden, uint32(n))
		}
	}
	return &trainingv1.JobSpec{Dataset: o.dataset, Model: &trainingv1.ModelSpec{Kind: kind, Hidden: hidden},
		TrainLimit: o.trainLimit, TestLimit: o.testLimit, LearningRate: o.lr, BatchSize: o.batch, Steps: o.steps,
		Epochs: o.epochs, Seed: o.seed, MinWorkers: o.minWorkers, MaxWorkers: o.maxWorkers, CheckpointInterval: o.checkpointEvery,
		EvalInterval: o.evalEvery, TargetAccuracy: o.target, Optimizer: o.optimizer, Momentum: o.momentum, ExportModel: o.export}, nil
}

func newTrainCmd(g *globals) *cobra.Command {
	o := &trainOptions{}
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train a model on the workers: a live progress bar, then a loss/accuracy plot (PNG)",
		Long: `Starts a data-parallel training job at the coordinator and follows it: step, loss, held-out
accuracy and workers on one line redrawn in place, membership changes as they happen, and at the end
where the model went and a PNG plot of loss and accuracy. With --workers N it starts local worker
processes for the job when fewer than N are registered (the training-worker binary next to this one
or in ./bin); they stop with the command. Ctrl-C stops following; the job goes on with the workers
it has (bourse train watch JOB follows it again, bourse train stop JOB stops it).`,
		Example: `  bourse --api-key dev-admin train --dataset mnist --model mlp --hidden 128 --epochs 1 --workers 2
  bourse --api-key dev-admin train --dataset fraud --model logistic --steps 300 --target-accuracy 0.9
  bourse --api-key dev-admin train --dataset mnist --train-limit 6000 --steps 200 --plot loss.png --workers 3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := o.spec()
			if err != nil {
				return err
			}
			if o.jobID == "" {
				var b [4]byte
				_, _ = rand.Read(b[:])
				o.jobID = fmt.Sprintf("%s-%s-%s", o.dataset, o.model, hex.EncodeToString(b[:]))
			}
			ctx, cancel := g.callCtx(cmd)
			started, err := call(g, coordinator, func(cc *grpc.ClientConn) (*trainingv1.StartJobResponse, error) {
				return trainingv1.NewTrainingCoordinatorServiceClient(cc).StartJob(ctx, &trainingv1.StartJobRequest{JobId: o.jobID, Spec: spec})
			})
			cancel()
			if err != nil {
				return err
			}
			job := started.GetJob()
			fmt.Fprintf(g.errOut, "job %s: %s, %d steps\n", job.GetJobId(), enumName(job.GetStatus(), "JOB_STATUS_"), job.GetTotalSteps())
			if o.workers > 0 {
				ctx, abort := context.WithCancelCause(cmd.Context())
				defer abort(nil)
				cmd.SetContext(ctx)
				stop, err := g.startLocalWorkers(o, job.GetJobId(), abort)
				if err != nil {
					return err
				}
				defer stop()
			}
			if o.detach {
				return g.print(started, func(t *tabwriter.Writer) { jobTable(t, []*trainingv1.Job{job}) })
			}
			return g.followJob(cmd, job, o.plot)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.jobID, "job-id", "", "the job's id (default <dataset>-<model>-<random>; starting an existing id again follows it)")
	f.StringVar(&o.dataset, "dataset", "mnist", "mnist or fraud")
	f.StringVar(&o.model, "model", "mlp", "mlp or logistic")
	f.StringVar(&o.hidden, "hidden", "128", "hidden layer widths of the MLP, comma separated")
	f.StringVar(&o.optimizer, "optimizer", "", "sgd or adam (default the coordinator's)")
	f.Float32Var(&o.lr, "lr", 0.05, "learning rate")
	f.Float32Var(&o.momentum, "momentum", 0.9, "SGD momentum")
	f.Float32Var(&o.target, "target-accuracy", 0, "stop when held-out accuracy reaches this (0..1)")
	f.Uint32Var(&o.batch, "batch", 64, "global batch size (split across workers)")
	f.Uint32Var(&o.epochs, "epochs", 0, "passes over the training set (or --steps)")
	f.Uint64Var(&o.steps, "steps", 0, "steps to run (or --epochs)")
	f.Uint64Var(&o.seed, "seed", 1, "seed of initialisation and data order")
	f.Uint32Var(&o.minWorkers, "min-workers", 1, "fewest workers the job runs with")
	f.Uint32Var(&o.maxWorkers, "max-workers", 4, "most workers the job takes")
	f.Uint32Var(&o.trainLimit, "train-limit", 0, "use only the first N training samples (0: all)")
	f.Uint32Var(&o.testLimit, "test-limit", 0, "use only the first N test samples (0: all)")
	f.Uint64Var(&o.checkpointEvery, "checkpoint-interval", 0, "steps between checkpoints (0: the coordinator's default)")
	f.Uint64Var(&o.evalEvery, "eval-interval", 0, "steps between evaluations (0: the coordinator's default)")
	f.IntVar(&o.workers, "workers", 0, "start local workers until this many are registered")
	f.StringVar(&o.workerBin, "worker-bin", "", "the training-worker binary (default: next to bourse, then ./bin)")
	f.StringVar(&o.workerKeyFile, "worker-api-key-file", ".run/keys/training-worker.key", "key file local workers present to the coordinator")
	f.StringVar(&o.plot, "plot", "", "PNG of loss and accuracy per step (default <job>.png; \"-\" for none)")
	f.BoolVar(&o.detach, "detach", false, "start the job and exit without following it")
	f.StringVar(&o.export, "export", "", "serve the final model in inference under this name (a new version, loaded at once)")

	stopCmd := &cobra.Command{
		Use: "stop JOB", Short: "Stop a training job", Example: "  bourse train stop mnist-mlp-1a2b3c4d", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := g.callCtx(cmd)
			defer cancel()
			resp, err := call(g, coordinator, func(cc *grpc.ClientConn) (*trainingv1.StopJobResponse, error) {
				return trainingv1.NewTrainingCoordinatorServiceClient(cc).StopJob(ctx, &trainingv1.StopJobRequest{JobId: args[0]})
			})
			if err != nil {
				return err
			}
			return g.print(resp, func(t *tabwriter.Writer) { jobTable(t, []*trainingv1.Job{resp.GetJob()}) })
		},
	}
	listCmd := &cobra.Command{
		Use: "list", Short: "Training jobs, newest first", Example: "  bourse train list\n  bourse train list -o json", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := g.callCtx(cmd)
			defer cancel()
			resp, err := call(g, coordinator, func(cc *grpc.ClientConn) (*trainingv1.ListJobsResponse, error) {
				return trainingv1.NewTrainingCoordinatorServiceClient(cc).ListJobs(ctx, &trainingv1.ListJobsRequest{Limit: 50})
			})
			if err != nil {
				return err
			}
			return g.print(resp, func(t *tabwriter.Writer) { jobTable(t, resp.GetJobs()) })
		},
	}
	watchCmd := &cobra.Command{
		Use: "watch JOB", Short: "Follow a running job's progress (and plot it at the end)", Example: "  bourse train watch mnist-mlp-1a2b3c4d",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := g.callCtx(cmd)
			resp, err := call(g, coordinator, func(cc *grpc.ClientConn) (*trainingv1.GetJobResponse, error) {
				return trainingv1.NewTrainingCoordinatorServiceClient(cc).GetJob(ctx, &trainingv1.GetJobRequest{JobId: args[0]})
			})
			cancel()
			if err != nil {
				return err
			}
			return g.followJob(cmd, resp.GetJob(), o.plot)
		},
	}
	watchCmd.Flags().StringVar(&o.plot, "plot", "", "PNG of loss and accuracy (default <job>.png; \"-\" for none)")
	cmd.AddCommand(stopCmd, listCmd, watchCmd)
	return cmd
}

func jobTable(t *tabwriter.Writer, jobs []*trainingv1.Job) {
	row(t, "JOB", "STATUS", "STEP", "LOSS", "ACCURACY", "WORKERS", "REASON")
	for _, j := range jobs {
		row(t, j.GetJobId(), enumName(j.GetStatus(), "JOB_STATUS_"), fmt.Sprintf("%d/%d", j.GetStep(), j.GetTotalSteps()),
			fmt.Sprintf("%.4f", j.GetLastLoss()), fmt.Sprintf("%.2f%%", 100*j.GetLastAccuracy()), len(j.GetMembers()), j.GetReason())
	}
}

// curve is what the plot shows.
type curve struct {
	lossSteps, accSteps []float64
	loss, acc           []float64
}

// followJob streams the job's progress into a progress bar until it ends, then writes the plot.
func (g *globals) followJob(cmd *cobra.Command, job *trainingv1.Job, plotPath string) error {
	ctx := cmd.Context()
	stream, err := call(g, coordinator, func(cc *grpc.ClientConn) (grpc.ServerStreamingClient[trainingv1.StreamJobProgressResponse], error) {
		return trainingv1.NewTrainingCoordinatorServiceClient(cc).StreamJobProgress(ctx, &trainingv1.StreamJobProgressRequest{JobId: job.GetJobId()})
	})
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			return &exitError{ExitFailed, cause.Error()}
		}
		return err
	}
	bar := newProgressBar(g.errOut)
	total := max(job.GetTotalSteps(), 1)
	var (
		step, workers uint64
		loss, acc     float32
		rate          float64
		c             curve
		final         *trainingv1.StatusEvent
	)
	workers = uint64(len(job.GetMembers()))
	detail := func() string {
		return fmt.Sprintf("step %d/%d  loss %.4f  acc %.2f%%  %d workers  %.0f samples/s", step, total, loss, 100*acc, workers, rate)
	}
	for final == nil {
		ev, err := stream.Recv()
		if err != nil {
			if ctx.Err() != nil || status.Code(err) == codes.Canceled {
				bar.done("train", float64(step)/float64(total), detail())
				if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
					return &exitError{ExitFailed, cause.Error()}
				}
				fmt.Fprintf(g.errOut, "stopped following; the job goes on (bourse train watch %s)\n", job.GetJobId())
				return nil
			}
			if errors.Is(err, io.EOF) {
				break
			}
			return explain(err, coordinator, g.conns.where(coordinator))
		}
		if g.output != "table" {
			if err := g.print(ev, nil); err != nil {
				return err
			}
		}
		switch e := ev.GetEvent().(type) {
		case *trainingv1.StreamJobProgressResponse_Step:
			step, loss, rate = e.Step.GetStep(), e.Step.GetLoss(), e.Step.GetSamplesPerSecond()
			c.lossSteps, c.loss = append(c.lossSteps, float64(step)), append(c.loss, float64(loss))
		case *trainingv1.StreamJobProgressResponse_Eval:
			acc = e.Eval.GetAccuracy()
			c.accSteps, c.acc = append(c.accSteps, float64(e.Eval.GetStep())), append(c.acc, float64(acc))
		case *trainingv1.StreamJobProgressResponse_Membership:
			workers = uint64(len(e.Membership.GetMembers()))
			if g.output == "table" && bar.tty {
				fmt.Fprintf(g.errOut, "\r\x1b[2Kgeneration %d at step %d: %d workers\n", e.Membership.GetGeneration(), e.Membership.GetStep(), workers)
			}
		case *trainingv1.StreamJobProgressResponse_Status:
			if isFinal(e.Status.GetStatus()) && !awaitingExport(job, e.Status) {
				final = e.Status
			}
		}
		bar.update("train", float64(step)/float64(total), detail())
	}
	if final == nil {
		return &exitError{ExitFailed, "the progress stream ended before the job did"}
	}
	if final.GetStatus() == trainingv1.JobStatus_JOB_STATUS_SUCCEEDED {
		step = max(step, total) // a target reached early also ends the bar at 100%
		bar.done("train", 1, detail())
	} else {
		bar.done("train", float64(step)/float64(total), detail())
	}
	if plotPath == "" {
		plotPath = job.GetJobId() + ".png"
	}
	if plotPath != "-" && len(c.loss) > 0 {
		if err := writePlot(plotPath, job.GetJobId(), c); err != nil {
			return &exitError{ExitFailed, "plot: " + err.Error()}
		}
		fmt.Fprintf(g.errOut, "plot %s\n", plotPath)
	}
	fmt.Fprintf(g.errOut, "job %s %s", job.GetJobId(), enumName(final.GetStatus(), "JOB_STATUS_"))
	if final.GetReason() != "" {
		fmt.Fprintf(g.errOut, ": %s", final.GetReason())
	}
	if final.GetModelPath() != "" {
		fmt.Fprintf(g.errOut, "; model %s", final.GetModelPath())
	}
	fmt.Fprintln(g.errOut)
	if final.GetExportedModel() != "" {
		fmt.Fprintf(g.errOut, "serving %s version %d in inference (bourse infer %s --input ...)\n", final.GetExportedModel(), final.GetExportedVersion(), final.GetExportedModel())
	}
	if final.GetExportError() != "" {
		return &exitError{ExitFailed, fmt.Sprintf("job %s succeeded but its export failed: %s", job.GetJobId(), final.GetExportError())}
	}
	if final.GetStatus() != trainingv1.JobStatus_JOB_STATUS_SUCCEEDED {
		return &exitError{ExitFailed, fmt.Sprintf("job %s %s: %s", job.GetJobId(), enumName(final.GetStatus(), "JOB_STATUS_"), final.GetReason())}
	}
	return nil
}

// awaitingExport: a job that succeeded and asked for an export reports the export on a later status
// event (or the same one); follow until it does.
func awaitingExport(job *trainingv1.Job, s *trainingv1.StatusEvent) bool {
	return job.GetSpec().GetExportModel() != "" && s.GetStatus() == trainingv1.JobStatus_JOB_STATUS_SUCCEEDED &&
		s.GetExportedModel() == "" && s.GetExportError() == ""
}

func isFinal(s trainingv1.JobStatus) bool {
	return s == trainingv1.JobStatus_JOB_STATUS_SUCCEEDED || s == trainingv1.JobStatus_JOB_STATUS_FAILED || s == trainingv1.JobStatus_JOB_STATUS_STOPPED
}

// startLocalWorkers starts training-worker processes for the job until the coordinator's Consul
// lists o.workers of them; the returned function stops those it started.
func (g *globals) startLocalWorkers(o *trainOptions, jobID string, abort context.CancelCauseFunc) (func(), error) {
	entries, _, err := g.conns.consul.Health().Service("training-worker", "", true, nil)
	if err != nil {
		return nil, &exitError{ExitUnreachable, fmt.Sprintf("Consul at %s: %v", g.consul, err)}
	}
	need := o.workers - len(entries)
	if need <= 0 {
		return func() {}, nil
	}
	bin, err := workerBinary(o.workerBin)
	if err != nil {
		return nil, err
	}
	logDir, err := os.MkdirTemp("", "bourse-train-workers-")
	if err != nil {
		return nil, err
	}
	key := g.apiKey
	if o.workerKeyFile != "" && fileExists(o.workerKeyFile) {
		b, err := os.ReadFile(o.workerKeyFile)
		if err != nil {
			return nil, err
		}
		key, _, _ = strings.Cut(strings.TrimSpace(string(b)), "\n")
	}
	if key == "" {
		return nil, usageError("local workers need a key: --worker-api-key-file or --api-key")
	}
	// The workers call each other with the same key: their own keyring names it (as a digest, so no
	// secret shows in the process list) as the worker service identity.
	digest := sha256.Sum256([]byte(key))
	keyring := "sha256:" + hex.EncodeToString(digest[:]) + "=service:training-worker"
	var procs []*exec.Cmd
	var exited []chan struct{}
	var stopping atomic.Bool
	// stop ends the workers this command started (and removes a key file it wrote); it also runs
	// when a later worker fails to start, so none is left behind.
	stop := func() {
		stopping.Store(true)
		for _, p := range procs {
			_ = p.Process.Signal(os.Interrupt)
		}
		deadline := time.After(10 * time.Second)
		for i, p := range procs {
			select {
			case <-exited[i]:
			case <-deadline:
				_ = p.Process.Kill()
				<-exited[i]
			}
		}
		_ = os.Remove(filepath.Join(logDir, "worker.key"))
	}
	var left atomic.Int32
	left.Store(int32(need)) // all of them, so one that dies while the next starts does not count as the last
	for i := range need {
		port, err := freePort()
		if err != nil {
			stop()
			return nil, err
		}
		// Peers dial the address a worker advertises, so it needs its port before it starts.
		args := []string{"--consul-addr=" + g.consul, fmt.Sprintf("--grpc-addr=127.0.0.1:%d", port), "--metrics-addr=127.0.0.1:0",
			"--advertise-host=127.0.0.1", "--check-interval=1s", "--job=" + jobID, "--exit-when-done",
			"--api-keys=" + keyring}
		if addr, ok, _ := g.addrOverride(coordinator); ok {
			args = append(args, "--coordinator="+addr)
		}
		keyArg, err := workerKeyArg(o.workerKeyFile, key, logDir)
		if err != nil {
			stop()
			return nil, err
		}
		args = append(args, keyArg)
		logPath := filepath.Join(logDir, fmt.Sprintf("worker-%d.log", i))
		logFile, err := os.Create(logPath)
		if err != nil {
			stop()
			return nil, err
		}
		p := exec.Command(bin, args...)
		p.Stdout, p.Stderr = logFile, logFile
		if err := p.Start(); err != nil {
			logFile.Close()
			stop()
			return nil, &exitError{ExitFailed, fmt.Sprintf("start %s: %v", bin, err)}
		}
		procs = append(procs, p)
		done := make(chan struct{})
		exited = append(exited, done)
		// One waiter per worker, owned here; it ends when the worker does. If every worker this
		// command started is gone before the job ends, following it is cancelled with the reason,
		// so the command fails with the worker's last words instead of waiting for steps that will
		// never come.
		go func() {
			err := p.Wait()
			logFile.Close()
			close(done)
			if stopping.Load() {
				return
			}
			fmt.Fprintf(g.errOut, "\r\x1b[2Klocal worker %d exited (%v): %s\n", i, err, lastLine(logPath))
			if left.Add(-1) == 0 {
				abort(fmt.Errorf("every local worker exited; last words: %s (logs in %s)", lastLine(logPath), logDir))
			}
		}()
	}
	fmt.Fprintf(g.errOut, "started %d local workers (logs in %s)\n", need, logDir)
	return stop, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func lastLine(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// workerKeyArg passes the key as a file, never on the command line: the given file, or one written
// (mode 0600) into the workers' log directory.
func workerKeyArg(file, key, dir string) (string, error) {
	if file != "" && fileExists(file) {
		return "--api-key-file=" + file, nil
	}
	path := filepath.Join(dir, "worker.key")
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return "", err
	}
	return "--api-key-file=" + path, nil
}

func workerBinary(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if exe, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(exe), "training-worker"); fileExists(p) {
			return p, nil
		}
	}
	if fileExists("bin/training-worker") {
		return "bin/training-worker", nil
	}
	if p, err := exec.LookPath("training-worker"); err == nil {
		return p, nil
	}
	return "", usageError("no training-worker binary next to bourse, in ./bin or on PATH (make build), or give --worker-bin")
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
