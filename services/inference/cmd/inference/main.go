// Command inference serves the KServe v2 inference protocol over a model repository, running ONNX
// models with onnxruntime, with dynamic batching and an optional response cache.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"

	"github.com/bourse-dev/bourse/pkg/config"
	pb "github.com/bourse-dev/bourse/pkg/gen/inference"
	"github.com/bourse-dev/bourse/pkg/server"
	"github.com/bourse-dev/bourse/services/inference/internal/backend"
	"github.com/bourse-dev/bourse/services/inference/internal/backend/onnx"
	"github.com/bourse-dev/bourse/services/inference/internal/cache"
	"github.com/bourse-dev/bourse/services/inference/internal/grpcapi"
	"github.com/bourse-dev/bourse/services/inference/internal/metrics"
	"github.com/bourse-dev/bourse/services/inference/internal/repository"
)

func main() {
	app := server.NewApp("inference", server.Defaults{GRPCAddr: "127.0.0.1:7004", MetricsAddr: "127.0.0.1:9104"})
	fs := app.Flags()
	repoDir := fs.String("model-repository", "models", "model repository: <dir>/<model>/config.json and <dir>/<model>/<version>/model.onnx")
	control := fs.String("model-control", "poll", "poll: load every model and follow the directory; explicit: load only --load-model and RepositoryModelLoad calls")
	poll := fs.Duration("poll-interval", 2*time.Second, "how often polling mode rescans the repository")
	loadModels := fs.String("load-model", "", "explicit mode: comma-separated models to load at start (* = all)")
	ortLib := fs.String("onnxruntime-lib", "bin/libonnxruntime.so", "onnxruntime shared library (scripts/onnxruntime.sh installs it)")
	threads := fs.Int("intra-op-threads", 1, "onnxruntime threads per execution (0 = one per core); small models scale through batching and instances instead")
	cacheBytes := fs.Int("cache-bytes", 64<<20, "in-process response cache size for models with response_cache on")
	redisURL := fs.String("redis-url", "", "redis://host:port/db to share the response cache between replicas")
	redisTTL := fs.Duration("redis-ttl", 10*time.Minute, "lifetime of responses cached in Redis")

	os.Exit(app.Main(func(ctx context.Context, env *server.Env) (server.Service, error) {
		mode := repository.ModePoll
		switch *control {
		case "poll":
		case "explicit":
			mode = repository.ModeExplicit
		default:
			return server.Service{}, fmt.Errorf("--model-control: %q is neither poll nor explicit", *control)
		}
		ortBackend, err := onnx.New(*ortLib, onnx.Options{IntraOpThreads: *threads})
		if err != nil {
			return server.Service{}, err
		}
		tiers := cache.Tiered{cache.NewLRU(*cacheBytes)}
		var closeRedis func() error
		if *redisURL != "" {
			r, err := cache.NewRedis(ctx, *redisURL, *redisTTL, env.Logger)
			if err != nil {
				return server.Service{}, fmt.Errorf("response cache redis: %w", err)
			}
			tiers = append(tiers, r)
			closeRedis = r.Close
			env.Logger.Info("response cache shared through redis")
		}
		repo, err := repository.New(repository.Options{
			Root: *repoDir, Mode: mode, PollInterval: *poll, StartupModels: config.List(*loadModels),
			Backends: []backend.Backend{ortBackend}, Cache: tiers, Metrics: metrics.New(env.Metrics), Logger: env.Logger,
		})
		if err != nil {
			return server.Service{}, err
		}
		if err := repo.Start(ctx); err != nil {
			return server.Service{}, err
		}
		api := grpcapi.New(repo)
		return server.Service{
			Register: func(s grpc.ServiceRegistrar) { pb.RegisterGRPCInferenceServiceServer(s, api) },
			Policy:   grpcapi.Policy,
			Meta:     map[string]string{"model_control": *control},
			Close: func(context.Context) error {
				repo.Close()
				if closeRedis != nil {
					return closeRedis()
				}
				return nil
			},
		}, nil
	}))
}
