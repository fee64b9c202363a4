// Command risk serves bourse.risk.v1.RiskService: accounts, reservations, positions, PnL and
// pre-trade limits, with every durable change in SQLite (default) or PostgreSQL.
package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"

	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
	"github.com/bourse-dev/bourse/pkg/server"
	"github.com/bourse-dev/bourse/services/risk/internal/engine"
	"github.com/bourse-dev/bourse/services/risk/internal/grpcapi"
	"github.com/bourse-dev/bourse/services/risk/internal/store"
)

// exitStoreFailed is the exit code after a failed commit.
const exitStoreFailed = 3

func main() {
	app := server.NewApp("risk", server.Defaults{GRPCAddr: "127.0.0.1:7002", MetricsAddr: "127.0.0.1:9102"})
	fs := app.Flags()
	dataDir := fs.String("data-dir", "data/risk", "directory of the SQLite database (when --database-url is empty)")
	dbURL := fs.String("database-url", "", "postgres://... for PostgreSQL, or a SQLite file path (default <data-dir>/risk.db)")
	feeAccount := fs.String("fee-account", "fees", "account that receives trading fees")
	cutoff := fs.Duration("daily-cutoff", 0, "UTC time of day when the daily loss resets, as an offset from midnight (e.g. 22h)")
	snapshotEvery := fs.Uint64("snapshot-every", 100_000, "snapshot the engine (and prune the log) after this many events; 0: only on shutdown")

	os.Exit(app.Main(func(ctx context.Context, env *server.Env) (server.Service, error) {
		url := *dbURL
		if url == "" {
			if err := os.MkdirAll(*dataDir, 0o755); err != nil {
				return server.Service{}, err
			}
			url = filepath.Join(*dataDir, "risk.db")
		}
		opts := store.Options{
			// Fail-stop: a change the engine applied is not durable, and so is nothing queued after
			// it. Exit at once, without draining: every answer given from memory from here on could
			// be undone by the restart, which rebuilds exactly what is committed.
			OnFail: func(err error) {
				env.Logger.Error("store failed: exiting without serving another call", "err", err)
				os.Exit(exitStoreFailed)
			},
		}
		st, err := store.Open(ctx, url, opts)
		if err != nil {
			return server.Service{}, fmt.Errorf("open store: %w", err)
		}
		inc, err := st.Start(ctx)
		if err != nil {
			st.Close()
			return server.Service{}, err
		}
		eng, err := engine.New(engine.Config{FeeAccount: *feeAccount, DailyCutoff: *cutoff,
			Incarnation: inc.Number, ReservationIDFloor: inc.IDFloor, ReservationIDLimit: inc.IDLimit})
		if err != nil {
			st.Close()
			return server.Service{}, err
		}
		start := time.Now()
		replayed, err := st.Load(ctx, eng)
		if err != nil {
			st.Close()
			return server.Service{}, err
		}
		snapSeq := eng.LastSeq() - replayed
		env.Logger.Info("state rebuilt", "store", st.Dialect().String(), "snapshot_seq", snapSeq, "events_replayed", replayed,
			"elapsed", time.Since(start), "incarnation", inc.Number)

		// Background writers, owned here: they stop when Close cancels bg. One reserves reservation
		// ids ahead of use, the other snapshots the engine every --snapshot-every events.
		bg, stopBG := context.WithCancel(context.Background())
		idsDone, snapDone := make(chan struct{}), make(chan uint64, 1)
		go func() {
			defer close(idsDone)
			store.KeepReservationIDs(bg, st, eng, env.Logger)
		}()
		go func() {
			every := *snapshotEvery
			if every == 0 {
				every = math.MaxUint64 - snapSeq
			}
			snapDone <- store.KeepSnapshots(bg, st, eng, every, snapSeq, time.Second, env.Logger)
		}()

		api := grpcapi.New(eng, st, env.Fail, func() int64 { return time.Now().UnixNano() })
		return server.Service{
			Register: func(s grpc.ServiceRegistrar) { riskv1.RegisterRiskServiceServer(s, api) },
			Policy:   grpcapi.Policy,
			Meta:     map[string]string{"store": st.Dialect().String()},
			Close: func(ctx context.Context) error {
				stopBG()
				<-idsDone
				// A clean stop leaves a snapshot of everything, so the next start replays nothing.
				if last := <-snapDone; st.Err() == nil && eng.LastSeq() > last {
					if seq, err := st.Snapshot(ctx, eng); err != nil {
						env.Logger.Error("snapshot on shutdown", "err", err)
					} else {
						env.Logger.Info("snapshot written on shutdown", "seq", seq)
					}
				}
				return st.Close()
			},
		}, nil
	}))
}
