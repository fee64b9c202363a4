// Command training-worker is one data-parallel training worker: it registers in Consul as
// training-worker at its advertised address, joins jobs at the coordinator, and runs the ring
// allreduce with the other workers over bourse.training.v1.WorkerService.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/bourse-dev/bourse/pkg/auth"
	"github.com/bourse-dev/bourse/pkg/client"
	trainingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/training/v1"
	"github.com/bourse-dev/bourse/pkg/server"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/allreduce/grpcring"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/grpcapi"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/worker"
)

// maxMessage bounds the state transfer and checkpoint messages (parameters and optimizer state).
const maxMessage = 256 << 20

func main() {
	app := server.NewApp("training-worker", server.Defaults{GRPCAddr: "127.0.0.1:7100"})
	fs := app.Flags()
	coord := fs.String("coordinator", "consul:///training-coordinator", "the coordinator (consul:///training-coordinator or host:port)")
	key := fs.String("api-key", "", "API key this worker presents to the coordinator and its peers (service:training-worker in their keyrings; prefer --api-key-file)")
	keyFile := fs.String("api-key-file", "", "file holding the key this worker presents (re-read when it changes)")
	job := fs.String("job", "", "take part only in this job (default: any runnable job)")
	id := fs.String("worker-id", "", "worker id (default training-worker-<advertised host>-<port>)")
	mnistDir := fs.String("mnist-dir", "", "directory of the four MNIST idx .gz files (default: the GoMNIST module's data directory)")
	exitWhenDone := fs.Bool("exit-when-done", false, "with --job: exit once that job has ended")

	os.Exit(app.Main(func(ctx context.Context, env *server.Env) (server.Service, error) {
		addr, err := advertised(env.Options)
		if err != nil {
			return server.Service{}, err
		}
		var creds credentials.PerRPCCredentials
		switch {
		case *key != "" && *keyFile != "":
			return server.Service{}, fmt.Errorf("--api-key and --api-key-file: give one")
		case *keyFile != "":
			f, err := auth.OpenKeyFile(*keyFile, time.Second, env.Logger)
			if err != nil {
				return server.Service{}, fmt.Errorf("--api-key-file: %w", err)
			}
			creds = f
		case *key != "":
			creds = client.StaticKey(*key)
		default:
			env.Logger.Warn("no API key (--api-key-file): the coordinator and peers will refuse this worker")
		}
		opts := client.Options{Credentials: creds, MaxMessageBytes: maxMessage}
		conn, err := env.Dial(*coord, client.Options{Credentials: creds, MaxMessageBytes: maxMessage,
			Idempotent: []string{"bourse.training.v1.TrainingCoordinatorService/Heartbeat", "bourse.training.v1.TrainingCoordinatorService/GetCheckpoint"}})
		if err != nil {
			return server.Service{}, fmt.Errorf("dial coordinator: %w", err)
		}
		hub := grpcring.NewHub(func(peer string) (*grpc.ClientConn, error) { return env.Dial(peer, opts) }, env.Logger)
		workerID := *id
		if workerID == "" {
			workerID = "training-worker-" + addr
		}
		w := worker.New(worker.Config{
			ID: workerID, Address: addr, JobID: *job, Coordinator: trainingv1.NewTrainingCoordinatorServiceClient(conn),
			Log: env.Logger.With("worker", workerID), MNISTDir: *mnistDir, ExitWhenDone: *exitWhenDone && *job != "",
		}, hub)
		// The training loop, owned here: started once the build returns (the server is about to
		// serve), stopped by Close before the connections it uses.
		runCtx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = w.Run(runCtx)
			if *exitWhenDone && runCtx.Err() == nil {
				// The job ended: stop like an operator would (drain, deregister, exit 0).
				env.Logger.Info("job ended: stopping", "job", *job)
				_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
			}
		}()
		return server.Service{
			Register: func(s grpc.ServiceRegistrar) { trainingv1.RegisterWorkerServiceServer(s, w) },
			Policy:   grpcapi.WorkerPolicy,
			Meta:     map[string]string{"address": addr},
			Close: func(context.Context) error {
				stop()
				<-done
				hub.Close()
				return conn.Close()
			},
		}, nil
	}))
}

// advertised is the host:port peers dial: --advertise-host (or the listen host) and the listen
// port. Never guessed: an unspecified listen host needs --advertise-host, and the port must be
// fixed, since the worker tells the coordinator its address before it serves.
func advertised(o *server.Options) (string, error) {
	host, port, err := net.SplitHostPort(o.GRPCAddr)
	if err != nil {
		return "", fmt.Errorf("--grpc-addr: %w", err)
	}
	if p, err := strconv.Atoi(port); err != nil || p == 0 {
		return "", fmt.Errorf("--grpc-addr %s: the worker needs a fixed port (peers dial the advertised address)", o.GRPCAddr)
	}
	if o.AdvertiseHost != "" {
		host = o.AdvertiseHost
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		return "", fmt.Errorf("--advertise-host: required when --grpc-addr listens on every interface (%s)", o.GRPCAddr)
	}
	return net.JoinHostPort(host, port), nil
}
