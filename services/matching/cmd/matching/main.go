// Command matching serves bourse.matching.v1.MatchingService: one order book per symbol, every
// order checked by the risk service, every accepted command journaled and fsynced before it is
// acknowledged, fills settled with risk, and market data streamed.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/bourse-dev/bourse/pkg/auth"
	"github.com/bourse-dev/bourse/pkg/client"
	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
	"github.com/bourse-dev/bourse/pkg/server"
	"github.com/bourse-dev/bourse/services/matching/internal/exchange"
	"github.com/bourse-dev/bourse/services/matching/internal/grpcapi"
	"github.com/bourse-dev/bourse/services/matching/internal/riskclient"
)

func main() {
	app := server.NewApp("matching", server.Defaults{GRPCAddr: "127.0.0.1:7003", MetricsAddr: "127.0.0.1:9103"})
	fs := app.Flags()
	dataDir := fs.String("data-dir", "data/matching", "directory of the journals and snapshots")
	riskAddr := fs.String("risk-addr", "consul:///risk", "the risk service: consul:///risk or host:port")
	riskKey := fs.String("risk-api-key", "", "API key matching presents to risk; risk's keyring maps it to service:matching (prefer --risk-api-key-file: flags show in ps)")
	riskKeyFile := fs.String("risk-api-key-file", "", "file holding the key matching presents to risk (first non-comment line); re-read when it changes, so the key rotates without a restart")
	shards := fs.Int("shards", max(1, runtime.GOMAXPROCS(0)), "symbol groups, each with its own goroutine and journal")
	retain := fs.Int("retain-closed", 100_000, "closed orders kept in full per symbol for GetOrder")
	idWindow := fs.Duration("client-id-window", time.Hour, "how long a closed order's client_order_id stays taken (a repeat answers duplicate)")
	idCap := fs.Int("client-id-cap", 250_000, "client order ids of closed orders kept per symbol past --retain-closed (bounds the window's memory)")
	snapshotEvery := fs.Int("snapshot-every", 1_000_000, "journaled commands between snapshots of a symbol group (0: never); replay after a crash covers at most this many")
	dayEnd := fs.Duration("day-end", 0, "when DAY orders expire, as an offset from 00:00 UTC (e.g. 22h)")
	noSync := fs.Bool("unsafe-no-fsync", false, "skip fsync of the journal (benchmarks only: a power loss can lose acknowledged orders)")
	riskTimeout := fs.Duration("risk-timeout", 5*time.Second, "deadline of each call to the risk service")

	os.Exit(app.Main(func(ctx context.Context, env *server.Env) (server.Service, error) {
		creds, err := riskCredentials(*riskKey, *riskKeyFile, env)
		if err != nil {
			return server.Service{}, err
		}
		conn, err := env.Dial(*riskAddr, client.Options{
			Credentials: creds,
			// With mutual TLS, whatever --risk-addr names must prove it is the risk service.
			ServerName: "risk",
			Idempotent: []string{
				riskv1.RiskService_ListSymbols_FullMethodName,
				riskv1.RiskService_Settle_FullMethodName, // applied once by stream position
				riskv1.RiskService_SyncReservations_FullMethodName,
				riskv1.RiskService_ReleaseReservations_FullMethodName,
			},
		})
		if err != nil {
			return server.Service{}, fmt.Errorf("dial risk: %w", err)
		}
		x, err := exchange.Open(ctx, exchange.Config{
			DataDir: *dataDir, Shards: *shards, Retain: *retain, IDWindow: *idWindow, IDCap: *idCap, SnapshotEvery: *snapshotEvery, NoSync: *noSync,
			DayEnd: *dayEnd, RiskTimeout: *riskTimeout, Logger: env.Logger, Fail: env.Fail,
		}, riskclient.New(riskv1.NewRiskServiceClient(conn)))
		if err != nil {
			conn.Close()
			return server.Service{}, fmt.Errorf("open exchange: %w", err)
		}
		registerSettlementMetrics(env.Metrics, x)
		api := grpcapi.New(x)
		api.Draining = env.Draining
		return server.Service{
			Register: func(s grpc.ServiceRegistrar) { matchingv1.RegisterMatchingServiceServer(s, api) },
			Policy:   grpcapi.Policy,
			Meta:     map[string]string{"shards": strconv.Itoa(*shards), "fsync": strconv.FormatBool(!*noSync)},
			Close: func(ctx context.Context) error {
				defer conn.Close()
				return x.Close(ctx)
			},
		}, nil
	}))
}

// riskCredentials are matching's credentials for risk: its own service identity, not an admin key,
// so risk grants it the order checks and settlement and nothing else.
func riskCredentials(flagKey, file string, env *server.Env) (credentials.PerRPCCredentials, error) {
	switch {
	case flagKey != "" && file != "":
		return nil, fmt.Errorf("--risk-api-key and --risk-api-key-file: give one")
	case file != "":
		f, err := auth.OpenKeyFile(file, time.Second, env.Logger)
		if err != nil {
			return nil, fmt.Errorf("--risk-api-key-file: %w", err)
		}
		return f, nil
	case flagKey != "":
		return client.StaticKey(flagKey), nil
	}
	env.Logger.Warn("no key for risk (--risk-api-key-file): risk will refuse every order check")
	return nil, nil
}
