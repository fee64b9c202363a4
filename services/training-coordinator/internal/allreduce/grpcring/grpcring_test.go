package grpcring

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	trainingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/training/v1"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/allreduce"
)

type node struct {
	hub  *Hub
	srv  *grpc.Server
	addr string
}

func dial(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
}

// startNodes serves one Hub per rank on its own loopback listener, as separate workers would.
func startNodes(t *testing.T, size int) []*node {
	t.Helper()
	nodes := make([]*node, size)
	for i := range nodes {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		n := &node{hub: NewHub(dial, slog.Default()), srv: grpc.NewServer(), addr: lis.Addr().String()}
		trainingv1.RegisterWorkerServiceServer(n.srv, n.hub)
		go func() { _ = n.srv.Serve(lis) }()
		t.Cleanup(func() { n.hub.Close(); n.srv.Stop() })
		nodes[i] = n
	}
	return nodes
}

func open(nodes []*node, job string, gen uint64) []*Session {
	out := make([]*Session, len(nodes))
	for r, n := range nodes {
		out[r] = n.hub.Open(job, gen, r, len(nodes), nodes[(r+1)%len(nodes)].addr)
	}
	return out
}

func vectors(seed uint64, size, n int) [][]float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([][]float32, size)
	for i := range out {
		out[i] = make([]float32, n)
		for j := range out[i] {
			out[i][j] = float32((r.Float64()*2 - 1) * math.Pow(10, float64(r.IntN(6)-3)))
		}
	}
	return out
}

// Over real gRPC streams on loopback the ring gives the same bits as the documented serial order,
// for N = 1..5 and odd lengths, over several steps of one generation and then a second generation.
func TestGRPCRingEqualsSerialSum(t *testing.T) {
	for size := 1; size <= 5; size++ {
		nodes := startNodes(t, size)
		for gen := uint64(1); gen <= 2; gen++ {
			sessions := open(nodes, "job-a", gen)
			for step, n := range []int{1, 3, 7, 1001, 12345} {
				in := vectors(uint64(size*100+step), size, n)
				want := allreduce.Reference(in)
				out := make([][]float32, size)
				errs := make([]error, size)
				var wg sync.WaitGroup
				for r := range size {
					out[r] = append([]float32(nil), in[r]...)
					wg.Go(func() {
						ring := &allreduce.Ring{Rank: r, Size: size, T: sessions[r], Timeout: 10 * time.Second, MaxChunk: 1000}
						_, errs[r] = ring.AllReduce(context.Background(), gen, uint64(step), out[r])
					})
				}
				wg.Wait()
				for r := range size {
					if errs[r] != nil {
						t.Fatalf("N=%d gen %d n=%d rank %d: %v", size, gen, n, r, errs[r])
					}
					for i := range want {
						if math.Float32bits(out[r][i]) != math.Float32bits(want[i]) {
							t.Fatalf("N=%d n=%d rank %d [%d]: %v, want %v", size, n, r, i, out[r][i], want[i])
						}
					}
				}
			}
		}
	}
}

// A worker whose process dies mid-collective (its server and connections go) fails the collective
// on every survivor well before the receive deadline.
func TestGRPCRingPeerDiesEveryoneFailsFast(t *testing.T) {
	const size, timeout = 4, 20 * time.Second
	nodes := startNodes(t, size)
	sessions := open(nodes, "job-b", 7)
	in := vectors(9, size, 50_000)
	errs := make([]error, size)
	var wg sync.WaitGroup
	start := time.Now()
	for r := range size {
		if r == 1 {
			continue
		}
		wg.Go(func() {
			ring := &allreduce.Ring{Rank: r, Size: size, T: sessions[r], Timeout: timeout, MaxChunk: 500}
			_, errs[r] = ring.AllReduce(context.Background(), 7, 1, append([]float32(nil), in[r]...))
		})
	}
	// Rank 1 sends a little and then its process is gone.
	_ = sessions[1].Send(context.Background(), allreduce.Message{Gen: 7, Step: 1, Phase: allreduce.ReduceScatter, Segment: 1, Data: in[1][12500:13000]})
	time.Sleep(50 * time.Millisecond)
	nodes[1].srv.Stop()
	nodes[1].hub.Close()
	wg.Wait()
	elapsed := time.Since(start)
	for r, err := range errs {
		if r == 1 {
			continue
		}
		var e *allreduce.Error
		if !errors.As(err, &e) {
			t.Fatalf("rank %d: %v, want a failed collective", r, err)
		}
		t.Logf("rank %d after %v: %v", r, elapsed, err)
	}
	if elapsed > timeout/2 {
		t.Fatalf("survivors took %v; the abort should beat the %v deadline", elapsed, timeout)
	}
}

// A stream for an older generation than the worker's current one is refused at once.
func TestGRPCRingRefusesStaleGeneration(t *testing.T) {
	nodes := startNodes(t, 2)
	open(nodes, "job-c", 5)
	conn, err := dial(nodes[1].addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, c := range []struct {
		name string
		req  *trainingv1.ExchangeRequest
		code codes.Code
	}{
		{"stale generation", &trainingv1.ExchangeRequest{JobId: "job-c", Generation: 4, FromRank: 0}, codes.FailedPrecondition},
		{"not the previous rank", &trainingv1.ExchangeRequest{JobId: "job-c", Generation: 5, FromRank: 1}, codes.FailedPrecondition},
		{"no job", &trainingv1.ExchangeRequest{Generation: 5}, codes.InvalidArgument},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st, err := trainingv1.NewWorkerServiceClient(conn).Exchange(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_ = st.Send(c.req)
		_, err = st.CloseAndRecv()
		cancel()
		if status.Code(err) != c.code {
			t.Fatalf("%s: %v, want %v", c.name, err, c.code)
		}
	}
}

func TestFloatsRoundTrip(t *testing.T) {
	v := []float32{0, -0, 1.5, float32(math.Inf(1)), float32(math.NaN()), math.SmallestNonzeroFloat32}
	got, err := DecodeFloats(EncodeFloats(nil, v))
	if err != nil {
		t.Fatal(err)
	}
	for i := range v {
		if math.Float32bits(got[i]) != math.Float32bits(v[i]) {
			t.Fatalf("[%d] %v != %v", i, got[i], v[i])
		}
	}
	if _, err := DecodeFloats([]byte{1, 2, 3}); err == nil {
		t.Fatal("3 bytes decoded")
	}
}

func BenchmarkGRPCRing(b *testing.B) {
	for _, size := range []int{2, 4} {
		b.Run(map[int]string{2: "N=2", 4: "N=4"}[size], func(b *testing.B) {
			nodes := make([]*node, size)
			for i := range nodes {
				lis, _ := net.Listen("tcp", "127.0.0.1:0")
				n := &node{hub: NewHub(dial, slog.Default()), srv: grpc.NewServer(), addr: lis.Addr().String()}
				trainingv1.RegisterWorkerServiceServer(n.srv, n.hub)
				go func() { _ = n.srv.Serve(lis) }()
				defer func() { n.hub.Close(); n.srv.Stop() }()
				nodes[i] = n
			}
			sessions := open(nodes, "bench", 1)
			const n = 101_770
			in := vectors(3, size, n)
			b.SetBytes(int64(allreduce.OptimumBytes(n, size)))
			b.ReportAllocs()
			var wg sync.WaitGroup
			for r := range size {
				wg.Go(func() {
					ring := &allreduce.Ring{Rank: r, Size: size, T: sessions[r]}
					v := append([]float32(nil), in[r]...)
					for i := range b.N {
						if _, err := ring.AllReduce(context.Background(), 1, uint64(i), v); err != nil {
							b.Error(err)
							return
						}
						copy(v, in[r])
					}
				})
			}
			wg.Wait()
		})
	}
}

// viewFloats reads the same values as DecodeFloats, aligned or not, and refuses the same lengths.
func TestViewFloatsEqualsDecode(t *testing.T) {
	v := []float32{1, -2.5, float32(math.Inf(1)), 3e-38, 0}
	raw := EncodeFloats(nil, v)
	buf := make([]byte, len(raw)+1)
	for _, b := range [][]byte{raw, append(buf[:1], raw...)[1:]} {
		got, err := viewFloats(b)
		if err != nil {
			t.Fatal(err)
		}
		for i := range v {
			if math.Float32bits(got[i]) != math.Float32bits(v[i]) {
				t.Fatalf("[%d] %v != %v", i, got[i], v[i])
			}
		}
	}
	if _, err := viewFloats([]byte{1, 2, 3, 4, 5}); err == nil {
		t.Fatal("5 bytes viewed as floats")
	}
}
