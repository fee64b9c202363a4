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
	"google.golang.org/grpc/credentials"

	"github.com/bourse-dev/bourse/pkg/auth"
	"github.com/bourse-dev/bourse/pkg/client"
	trainingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/training/v1"
	pb "github.com/bourse-dev/bourse/pkg/gen/inference"
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
	repo := fs.String("model-repository", "", "inference's model repository: jobs with spec.export_model are exported there as a new version (empty: no exports)")
	inferenceAddr := fs.String("inference", "consul:///inference", "the inference service that loads exported models")
	inferenceKey := fs.String("inference-api-key", "", "API key presented to inference (service:training in its keyring; prefer --inference-api-key-file)")
	inferenceKeyFile := fs.String("inference-api-key-file", "", "file holding the key presented to inference (re-read when it changes)")

	os.Exit(app.Main(func(ctx context.Context, env *server.Env) (server.Service, error) {
		if err := os.MkdirAll(*dataDir, 0o755); err != nil {
			return server.Service{}, err
		}
		var exp coordinator.ExportFunc
		var inferenceConn *grpc.ClientConn
		if *repo != "" {
			creds, err := keyCredentials(*inferenceKey, *inferenceKeyFile, env)
			if err != nil {
				return server.Service{}, err
			}
			if inferenceConn, err = env.Dial(*inferenceAddr, client.Options{Credentials: creds}); err != nil {
				return server.Service{}, fmt.Errorf("dial inference: %w", err)
			}
			e := &exporter{repo: *repo, mnistDir: *mnistDir, inference: pb.NewGRPCInferenceServiceClient(inferenceConn)}
			exp = e.export
		}
		st, err := coordinator.OpenStore(ctx, filepath.Join(*dataDir, "jobs.db"))
		if err != nil {
			return server.Service{}, fmt.Errorf("open store: %w", err)
		}
		c, err := coordinator.New(ctx, coordinator.Config{
			Store: st, Checkpoints: checkpoint.Store{Dir: filepath.Join(*dataDir, "checkpoints"), Keep: *keep},
			DataInfo: dataInfo(*mnistDir), Log: env.Logger, HeartbeatInterval: *heartbeat, Export: exp,
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
				c.Close()
				if inferenceConn != nil {
					inferenceConn.Close()
				}
				return st.Close()
			},
		}, nil
	}))
}

// keyCredentials is the key the coordinator presents to inference: its own service identity.
func keyCredentials(key, file string, env *server.Env) (credentials.PerRPCCredentials, error) {
	switch {
	case key != "" && file != "":
		return nil, fmt.Errorf("--inference-api-key and --inference-api-key-file: give one")
	case file != "":
		f, err := auth.OpenKeyFile(file, time.Second, env.Logger)
		if err != nil {
			return nil, fmt.Errorf("--inference-api-key-file: %w", err)
		}
		return f, nil
	case key != "":
		return client.StaticKey(key), nil
	}
	env.Logger.Warn("no key for inference (--inference-api-key-file): it will refuse to load exported models")
	return nil, nil
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
