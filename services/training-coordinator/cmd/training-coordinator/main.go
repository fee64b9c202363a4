// Command training-coordinator serves bourse.training.v1.TrainingCoordinatorService: durable
// training jobs (SQLite under --data-dir), the workers' rendezvous and membership, checkpoints
// (under --data-dir/checkpoints) and progress. It is never on the gradient path.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"

	trainingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/training/v1"
	"github.com/bourse-dev/bourse/pkg/server"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/checkpoint"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/coordinator"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/dataset"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/grpcapi"
)

func main() {
	app := server.NewApp("training-coordinator", server.Defaults{GRPCAddr: "127.0.0.1:7006", MetricsAddr: "127.0.0.1:9106"})
	fs := app.Flags()
	dataDir := fs.String("data-dir", "data/training-coordinator", "directory of the jobs database and the checkpoints")
	mnistDir := fs.String("mnist-dir", "", "directory of the four MNIST idx .gz files (default: the GoMNIST module's data directory)")
	keep := fs.Int("keep-checkpoints", 2, "checkpoints kept per job")
	heartbeat := fs.Duration("heartbeat-interval", 500*time.Millisecond, "how often workers are told to heartbeat")

	os.Exit(app.Main(func(ctx context.Context, env *server.Env) (server.Service, error) {
		if err := os.MkdirAll(*dataDir, 0o755); err != nil {
			return server.Service{}, err
		}
		st, err := coordinator.OpenStore(ctx, filepath.Join(*dataDir, "jobs.db"))
		if err != nil {
			return server.Service{}, fmt.Errorf("open store: %w", err)
		}
		c, err := coordinator.New(ctx, coordinator.Config{
			Store: st, Checkpoints: checkpoint.Store{Dir: filepath.Join(*dataDir, "checkpoints"), Keep: *keep},
			DataInfo: dataInfo(*mnistDir), Log: env.Logger, HeartbeatInterval: *heartbeat,
		})
		if err != nil {
			st.Close()
			return server.Service{}, err
		}
		// The membership loop, owned here: Close stops it before the store closes.
		bg, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); c.Run(bg, 100*time.Millisecond) }()
		api := grpcapi.New(c, env.Draining)
		return server.Service{
			Register: func(s grpc.ServiceRegistrar) { trainingv1.RegisterTrainingCoordinatorServiceServer(s, api) },
			Policy:   grpcapi.Policy,
			Close: func(context.Context) error {
				stop()
				<-done
				return st.Close()
			},
		}, nil
	}))
}

// dataInfo resolves a dataset's training split size and shape, loading each (name, limit, seed)
// once.
func dataInfo(mnistDir string) coordinator.DataInfo {
	type key struct {
		name  string
		limit int
		seed  int64
	}
	type val struct{ n, dim, classes int }
	var mu sync.Mutex
	cache := map[key]val{}
	return func(name string, limit int, seed int64) (int, int, int, error) {
		if name == dataset.MNIST {
			seed = 0 // MNIST does not depend on the seed
		}
		k := key{name, limit, seed}
		mu.Lock()
		defer mu.Unlock()
		if v, ok := cache[k]; ok {
			return v.n, v.dim, v.classes, nil
		}
		train, _, err := dataset.Load(name, dataset.Options{Limit: limit, Seed: seed, MNISTDir: mnistDir})
		if err != nil {
			return 0, 0, 0, err
		}
		v := val{train.N, train.Dim, train.Classes}
		if len(cache) > 64 {
			clear(cache)
		}
		cache[k] = v
		return v.n, v.dim, v.classes, nil
	}
}
