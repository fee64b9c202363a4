// Command acquirer serves bourse.acquirer.v1.AcquirerService: a simulated card acquirer / bank with
// durable state in SQLite, idempotent by key, with injectable latency, failures, lost answers and
// decline rules, so payment's tests can break it and then ask it what really happened.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"

	acquirerv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/acquirer/v1"
	"github.com/bourse-dev/bourse/pkg/server"
	"github.com/bourse-dev/bourse/services/payment/internal/acquirer"
	"github.com/bourse-dev/bourse/services/payment/internal/acquirer/grpcapi"
)

// exitStoreFailed is the exit code after a failed commit.
const exitStoreFailed = 3

func main() {
	app := server.NewApp("acquirer", server.Defaults{GRPCAddr: "127.0.0.1:7015", MetricsAddr: "127.0.0.1:9115"})
	fs := app.Flags()
	dataDir := fs.String("data-dir", "data/acquirer", "directory of the SQLite database")
	maxOps := fs.Int("max-operations", 1_000_000, "operations kept (every one is also held in memory); beyond it acting calls are refused, not acted on")
	var f acquirer.Faults
	fs.DurationVar(&f.Latency, "latency", 0, "added before every acting call is decided")
	fs.DurationVar(&f.Jitter, "latency-jitter", 0, "plus a uniform random share of this")
	fs.Float64Var(&f.FailBefore, "fault-fail-before", 0, "probability (0-1) that an acting call fails before it is decided (UNAVAILABLE, NOT_ACTED, nothing stored)")
	fs.Float64Var(&f.LoseAnswer, "fault-lose-answer", 0, "probability (0-1) that an acting call's answer is lost once its outcome is on disk")
	loseMode := fs.String("fault-lose-mode", "unavailable", "how a lost answer looks: unavailable (as a connection dropped after sending) or hang (no answer until the caller's deadline)")
	fs.DurationVar(&f.AnswerDelay, "fault-answer-delay", 0, "held between the durable outcome and the answer")
	decline := fs.String("fault-decline", "", "decline rules, ';'-separated, each token=T,min=N,max=N,currency=C,kinds=authorize|payout,code=C (every field optional)")
	faultKinds := fs.String("fault-kinds", "", "comma-separated kinds (authorize,capture,void,refund,payout) the latency and failures apply to; empty: all")
	fs.Uint64Var(&f.Seed, "fault-seed", 0, "seed of the fault dice (0: from the clock)")

	os.Exit(app.Main(func(ctx context.Context, env *server.Env) (server.Service, error) {
		switch *loseMode {
		case "unavailable":
			f.LoseMode = acquirer.LoseUnavailable
		case "hang":
			f.LoseMode = acquirer.LoseHang
		default:
			return server.Service{}, fmt.Errorf("--fault-lose-mode: %q is neither unavailable nor hang", *loseMode)
		}
		rules, err := acquirer.ParseDeclineRules(*decline)
		if err != nil {
			return server.Service{}, fmt.Errorf("--fault-decline: %w", err)
		}
		f.Rules = rules
		for k := range strings.SplitSeq(*faultKinds, ",") {
			if k = strings.TrimSpace(k); k != "" {
				f.Kinds = append(f.Kinds, acquirer.Kind(k))
			}
		}
		if err := f.Validate(); err != nil {
			return server.Service{}, fmt.Errorf("fault flags: %w", err)
		}

		if err := os.MkdirAll(*dataDir, 0o755); err != nil {
			return server.Service{}, err
		}
		// Fail-stop: an outcome decided in memory could not be made durable, nor anything queued
		// after it. Exit at once; the restart rebuilds exactly what is on disk, and a caller that got
		// no answer asks Lookup.
		st, err := acquirer.OpenStore(ctx, filepath.Join(*dataDir, "acquirer.db"), func(err error) {
			env.Logger.Error("store failed: exiting without answering another call", "err", err)
			os.Exit(exitStoreFailed)
		})
		if err != nil {
			return server.Service{}, fmt.Errorf("open store: %w", err)
		}
		acq, err := acquirer.New(ctx, st, acquirer.Config{MaxOperations: *maxOps, Faults: f})
		if err != nil {
			st.Close()
			return server.Service{}, err
		}
		faults, _ := protojson.Marshal(grpcapi.FaultsPB(f))
		env.Logger.Info("acquirer ready", "operations", st.Durable(), "faults", string(faults))
		if err := env.Metrics.Register(newStatsCollector(acq)); err != nil {
			st.Close()
			return server.Service{}, err
		}
		api := grpcapi.New(acq)
		return server.Service{
			Register: func(s grpc.ServiceRegistrar) { acquirerv1.RegisterAcquirerServiceServer(s, api) },
			Policy:   grpcapi.Policy,
			Close:    func(context.Context) error { return st.Close() },
		}, nil
	}))
}
