package worker

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	trainingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/training/v1"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/allreduce"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/allreduce/grpcring"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/optim"
)

// BenchmarkDataParallelStep is one synchronous data-parallel step of the MNIST MLP (784-128-10,
// global batch 128) with N workers, each with its own gRPC server on loopback: local gradient,
// ring allreduce over gRPC, optimizer step. ns/op is the time of a step; steps/s, samples/s and
// each worker's allreduce bytes against the ring optimum are reported as metrics. The coordinator
// is not involved (it is not on the step's path apart from the commit, one small RPC).
func BenchmarkDataParallelStep(b *testing.B) {
	for _, world := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("workers=%d", world), func(b *testing.B) {
			job := &trainingv1.Job{JobId: "bench", TotalSteps: 1 << 40, Spec: &trainingv1.JobSpec{
				Dataset: "mnist", Model: &trainingv1.ModelSpec{Kind: trainingv1.ModelKind_MODEL_KIND_MLP, Hidden: []uint32{128}},
				TrainLimit: 10_000, TestLimit: 100, LearningRate: 0.05, BatchSize: 128, Seed: 1, Optimizer: optim.KindSGD,
			}}
			ranks := newRanks(b, job, world)
			n := ranks[0].jc.m.NumParams() + 1
			var sent uint64
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for r, rk := range ranks {
				wg.Go(func() {
					for step := range int64(b.N) {
						st, err := rk.step(step)
						if err != nil {
							b.Error(err)
							return
						}
						if r == 0 {
							sent += st.BytesSent
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			secs := b.Elapsed().Seconds()
			b.ReportMetric(float64(b.N)/secs, "steps/s")
			b.ReportMetric(float64(b.N*128)/secs, "samples/s")
			b.ReportMetric(float64(sent)/float64(b.N), "bytes/worker/step")
			b.ReportMetric(float64(allreduce.OptimumBytes(n, world)), "optimum-bytes")
		})
	}
}

// rank is one in-process worker of a ring: what Worker.generation does per step, without the
// coordinator.
type rank struct {
	r, world int
	jc       *jobCtx
	params   []float32
	opt      optim.Optimizer
	ring     *allreduce.Ring
}

func (rk *rank) step(step int64) (allreduce.Stats, error) {
	rk.jc.gradient(rk.params, step, rk.r, rk.world)
	st, err := rk.ring.AllReduce(context.Background(), 1, uint64(step), rk.jc.vec)
	if err != nil {
		return st, err
	}
	rk.opt.Step(rk.params, rk.jc.vec[:rk.jc.m.NumParams()])
	return st, nil
}

// newRanks starts world workers' rings, each behind its own gRPC server on loopback, initialised
// from the job's seed as rank 0 would.
func newRanks(tb testing.TB, job *trainingv1.Job, world int) []*rank {
	tb.Helper()
	hubs := make([]*grpcring.Hub, world)
	addrs := make([]string, world)
	for r := range world {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		hubs[r] = grpcring.NewHub(func(a string) (*grpc.ClientConn, error) {
			return grpc.NewClient(a, grpc.WithTransportCredentials(insecure.NewCredentials()))
		}, slog.Default())
		srv := grpc.NewServer()
		trainingv1.RegisterWorkerServiceServer(srv, hubs[r])
		go func() { _ = srv.Serve(lis) }()
		tb.Cleanup(func() { hubs[r].Close(); srv.Stop() })
		addrs[r] = lis.Addr().String()
	}
	ranks := make([]*rank, world)
	for r := range world {
		jc, err := newJobCtx(job, "")
		if err != nil {
			tb.Fatal(err)
		}
		opt, err := optim.New(jc.optCfg, jc.m.NumParams())
		if err != nil {
			tb.Fatal(err)
		}
		params := make([]float32, jc.m.NumParams())
		jc.m.Init(params, int64(job.GetSpec().GetSeed()))
		sess := hubs[r].Open(job.GetJobId(), 1, r, world, addrs[(r+1)%world])
		ranks[r] = &rank{r: r, world: world, jc: jc, params: params, opt: opt, ring: &allreduce.Ring{Rank: r, Size: world, T: sess}}
	}
	return ranks
}
