package grpcring

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	trainingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/training/v1"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/allreduce"
)

// delayProxy forwards loopback TCP connections to target, delivering every byte delay after it was
// read, in each direction: a one-way latency without a bandwidth limit, standing in for netem on a
// machine whose kernel has none. It stops when the listener is closed.
func delayProxy(tb testing.TB, target string, delay time.Duration) string {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { lis.Close() })
	go func() {
		for {
			in, err := lis.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			go pump(in, out, delay)
			go pump(out, in, delay)
		}
	}()
	return lis.Addr().String()
}

type chunk struct {
	due  time.Time
	data []byte
}

func pump(src, dst net.Conn, delay time.Duration) {
	q := make(chan chunk, 4096)
	go func() {
		defer dst.Close()
		for c := range q {
			time.Sleep(time.Until(c.due))
			if _, err := dst.Write(c.data); err != nil {
				return
			}
		}
	}()
	defer close(q)
	for {
		buf := make([]byte, 64<<10)
		n, err := src.Read(buf)
		if n > 0 {
			q <- chunk{due: time.Now().Add(delay), data: buf[:n]}
		}
		if err != nil {
			if err != io.EOF {
				src.Close()
			}
			return
		}
	}
}

// BenchmarkGRPCRingDelay is the allreduce of the MNIST MLP's gradient (101,771 values) over gRPC
// with a one-way delay between neighbours (0, 1 and 5 ms): the time of one allreduce, against the
// zero-delay run. A ring allreduce has 2(N−1) dependent rounds, so latency adds at least
// 2(N−1) × delay.
func BenchmarkGRPCRingDelay(b *testing.B) {
	for _, size := range []int{2, 4} {
		for _, delay := range []time.Duration{0, time.Millisecond, 5 * time.Millisecond} {
			b.Run(fmt.Sprintf("N=%d/delay=%v", size, delay), func(b *testing.B) {
				nodes := make([]*node, size)
				for i := range nodes {
					lis, err := net.Listen("tcp", "127.0.0.1:0")
					if err != nil {
						b.Fatal(err)
					}
					n := &node{hub: NewHub(dial, slog.Default()), srv: grpc.NewServer(), addr: lis.Addr().String()}
					trainingv1.RegisterWorkerServiceServer(n.srv, n.hub)
					go func() { _ = n.srv.Serve(lis) }()
					b.Cleanup(func() { n.hub.Close(); n.srv.Stop() })
					nodes[i] = n
				}
				sessions := make([]*Session, size)
				for r, n := range nodes {
					next := nodes[(r+1)%size].addr
					if delay > 0 {
						next = delayProxy(b, next, delay)
					}
					sessions[r] = n.hub.Open("delay", 1, r, size, next)
				}
				const n = 101_771
				in := vectors(5, size, n)
				b.ReportAllocs()
				b.ResetTimer()
				var wg sync.WaitGroup
				for r := range size {
					wg.Go(func() {
						ring := &allreduce.Ring{Rank: r, Size: size, T: sessions[r], Timeout: 30 * time.Second}
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
}
