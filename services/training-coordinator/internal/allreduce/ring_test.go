package allreduce

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// inputs returns size vectors of n values drawn from seed, with magnitudes spread over several
// orders so that a different association of the sum would show in the low bits.
func inputs(seed uint64, size, n int) [][]float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	out := make([][]float32, size)
	for i := range out {
		out[i] = make([]float32, n)
		for j := range out[i] {
			out[i][j] = float32((r.Float64()*2 - 1) * math.Pow(10, float64(r.IntN(6)-3)))
		}
	}
	return out
}

// runRing runs AllReduce on every rank concurrently and returns each rank's result, stats and error.
func runRing(t *testing.T, ring func(rank int) *Ring, in [][]float32) ([][]float32, []Stats, []error) {
	t.Helper()
	size := len(in)
	out := make([][]float32, size)
	stats := make([]Stats, size)
	errs := make([]error, size)
	var wg sync.WaitGroup
	for rank := range size {
		out[rank] = append([]float32(nil), in[rank]...)
		wg.Go(func() {
			stats[rank], errs[rank] = ring(rank).AllReduce(context.Background(), 3, 11, out[rank])
		})
	}
	wg.Wait()
	return out, stats, errs
}

func TestAllReduceEqualsSerialSum(t *testing.T) {
	for size := 1; size <= 5; size++ {
		for _, n := range []int{1, 2, 3, 7, 31, 1001} {
			for _, chunk := range []int{0, 3} {
				in := inputs(uint64(size*10000+n), size, n)
				mem := NewMemoryRing(size, 8)
				out, stats, errs := runRing(t, func(rank int) *Ring {
					return &Ring{Rank: rank, Size: size, T: mem.Transport(rank), Timeout: 5 * time.Second, MaxChunk: chunk}
				}, in)
				want := Reference(in)
				for rank := range size {
					if errs[rank] != nil {
						t.Fatalf("N=%d n=%d: rank %d: %v", size, n, rank, errs[rank])
					}
					assertSum(t, size, n, rank, in, want, out[rank])
					var sent uint64
					for s := range size - 1 {
						// reduce-scatter sends segments r, r-1, ...; all-gather r+1, r, ...
						lo, hi := Segment(n, size, ((rank-s)%size+size)%size)
						sent += uint64(4 * (hi - lo))
						lo, hi = Segment(n, size, ((rank+1-s)%size+size)%size)
						sent += uint64(4 * (hi - lo))
					}
					if stats[rank].BytesSent != sent {
						t.Fatalf("N=%d n=%d rank %d: sent %d bytes, want %d", size, n, rank, stats[rank].BytesSent, sent)
					}
				}
			}
		}
	}
}

// assertSum checks one rank's result against the documented order bit for bit, against the plain
// serial sum bit for bit where they coincide (N ≤ 2, and segment 0 always), and against a float64
// sum within float32 rounding.
func assertSum(t *testing.T, size, n, rank int, in [][]float32, want, got []float32) {
	t.Helper()
	lo0, hi0 := Segment(n, size, 0)
	for i := range n {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("N=%d n=%d rank %d [%d]: %v, reference %v", size, n, rank, i, got[i], want[i])
		}
		var serial float32
		var exact float64
		var mag float64
		for r := range size {
			serial += in[r][i]
			exact += float64(in[r][i])
			mag += math.Abs(float64(in[r][i]))
		}
		if (size <= 2 || (i >= lo0 && i < hi0)) && math.Float32bits(got[i]) != math.Float32bits(serial) {
			t.Fatalf("N=%d n=%d rank %d [%d]: %v, serial sum %v", size, n, rank, i, got[i], serial)
		}
		if d := math.Abs(float64(got[i]) - exact); d > float64(size)*mag*(1.0/(1<<23)) {
			t.Fatalf("N=%d n=%d rank %d [%d]: %v is %g from the exact sum %v", size, n, rank, i, got[i], d, exact)
		}
	}
}

// The ring always returns the same bits for the same inputs (checkpoint/resume relies on it).
func TestAllReduceDeterministic(t *testing.T) {
	in := inputs(42, 4, 999)
	var first [][]float32
	for range 5 {
		mem := NewMemoryRing(4, 2)
		out, _, errs := runRing(t, func(rank int) *Ring { return &Ring{Rank: rank, Size: 4, T: mem.Transport(rank), MaxChunk: 50} }, in)
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if first == nil {
			first = out
			continue
		}
		for r := range out {
			for i := range out[r] {
				if math.Float32bits(out[r][i]) != math.Float32bits(first[r][i]) {
					t.Fatalf("rank %d [%d]: %v then %v", r, i, first[r][i], out[r][i])
				}
			}
		}
	}
}

func TestOptimumBytes(t *testing.T) {
	for _, c := range []struct {
		n, size int
		want    uint64
	}{{100, 1, 0}, {100, 2, 400}, {100, 4, 600}, {1000, 5, 6400}} {
		if got := OptimumBytes(c.n, c.size); got != c.want {
			t.Errorf("OptimumBytes(%d, %d) = %d, want %d", c.n, c.size, got, c.want)
		}
	}
}

// A rank that crashes mid-collective (its connection breaks) fails the collective on every other
// rank by the abort passed round the ring, long before the receive deadline.
func TestDeadPeerFailsEveryoneFast(t *testing.T) {
	const size, timeout = 4, 20 * time.Second
	in := inputs(1, size, 4096)
	mem := NewMemoryRing(size, 4)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, size)
	for rank := range size {
		if rank == 2 {
			// Crashes after sending its first message.
			wg.Go(func() {
				tr := mem.Transport(2)
				_ = tr.Send(context.Background(), Message{Gen: 1, Step: 1, Phase: ReduceScatter, Segment: 2, Data: in[2][1024:2048]})
				mem.Kill(2)
			})
			continue
		}
		wg.Go(func() {
			v := append([]float32(nil), in[rank]...)
			_, errs[rank] = (&Ring{Rank: rank, Size: size, T: mem.Transport(rank), Timeout: timeout, MaxChunk: 100}).AllReduce(context.Background(), 1, 1, v)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	for rank, err := range errs {
		if rank == 2 {
			continue
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("rank %d: %v, want an *Error", rank, err)
		}
		t.Logf("rank %d: %v", rank, err)
	}
	if elapsed > timeout/2 {
		t.Fatalf("survivors took %v to fail; the abort should beat the %v deadline", elapsed, timeout)
	}
}

type slowReader struct{ Transport }

func (s slowReader) Recv(ctx context.Context) (Message, error) {
	time.Sleep(200 * time.Microsecond)
	return s.Transport.Recv(ctx)
}

// A rank that goes silent (no crash, no abort) is caught by the receive deadline on every other rank.
func TestSilentPeerHitsDeadline(t *testing.T) {
	const size = 3
	in := inputs(2, size, 300)
	mem := NewMemoryRing(size, 64)
	var wg sync.WaitGroup
	errs := make([]error, size)
	for rank := range size - 1 { // rank 2 never takes part
		wg.Go(func() {
			v := append([]float32(nil), in[rank]...)
			_, errs[rank] = (&Ring{Rank: rank, Size: size, T: mem.Transport(rank), Timeout: 200 * time.Millisecond}).AllReduce(context.Background(), 1, 1, v)
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("collective still running 30s after a peer went silent")
	}
	for rank := range size - 1 {
		if errs[rank] == nil {
			t.Fatalf("rank %d succeeded without rank 2", rank)
		}
	}
}

// Chunks of another generation or step, of the wrong shape, or with NaN/Inf are refused: the
// receiver's collective fails with ErrRefused, leaves its vector's other segments alone, and
// aborts downstream.
func TestRefusesBadChunks(t *testing.T) {
	good := Message{Gen: 5, Step: 9, Phase: ReduceScatter, Round: 0, Segment: 0, Data: []float32{1, 2, 3, 4}}
	cases := map[string]func(m *Message){
		"stale generation": func(m *Message) { m.Gen = 4 },
		"newer step":       func(m *Message) { m.Step = 10 },
		"older step":       func(m *Message) { m.Step = 8 },
		"wrong segment":    func(m *Message) { m.Segment = 1 },
		"wrong phase":      func(m *Message) { m.Phase = AllGather },
		"too long":         func(m *Message) { m.Data = []float32{1, 2, 3, 4, 5} },
		"empty":            func(m *Message) { m.Data = nil },
		"wrong offset":     func(m *Message) { m.Offset = 1 },
		"NaN":              func(m *Message) { m.Data = []float32{1, float32(math.NaN()), 3, 4} },
		"+Inf":             func(m *Message) { m.Data = []float32{1, 2, float32(math.Inf(1)), 4} },
		"-Inf":             func(m *Message) { m.Data = []float32{float32(math.Inf(-1)), 2, 3, 4} },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			mem := NewMemoryRing(2, 8)
			peer := mem.Transport(0)
			m := good
			m.Data = append([]float32(nil), good.Data...)
			mutate(&m)
			if err := peer.Send(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			v := []float32{10, 20, 30, 40, 50, 60, 70, 80}
			_, err := (&Ring{Rank: 1, Size: 2, T: mem.Transport(1), Timeout: 2 * time.Second}).AllReduce(context.Background(), 5, 9, v)
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("err = %v, want ErrRefused", err)
			}
			for i, want := range []float32{10, 20, 30, 40} {
				if v[i] != want {
					t.Fatalf("v[%d] = %v after a refused chunk, want %v", i, v[i], want)
				}
			}
			// What rank 1 sent to rank 0: its own segment 1, then the abort.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			var last Message
			for last.Phase != Abort {
				if last, err = peer.Recv(ctx); err != nil {
					t.Fatalf("no abort sent downstream: %v", err)
				}
			}
		})
	}
}

// A rank refuses to contribute a gradient that is not finite.
func TestRefusesOwnNonFinite(t *testing.T) {
	for _, size := range []int{1, 2} {
		mem := NewMemoryRing(size, 8)
		v := []float32{1, float32(math.NaN())}
		_, err := (&Ring{Rank: 0, Size: size, T: mem.Transport(0), Timeout: time.Second}).AllReduce(context.Background(), 1, 1, v)
		if !errors.Is(err, ErrRefused) {
			t.Fatalf("N=%d: err = %v, want ErrRefused", size, err)
		}
	}
}

func BenchmarkAllReduceMemory(b *testing.B) {
	for _, size := range []int{2, 4} {
		b.Run("N="+string(rune('0'+size)), func(b *testing.B) {
			const n = 101_770 // the MNIST MLP's parameters (784-128-10)
			in := inputs(3, size, n)
			mem := NewMemoryRing(size, 16)
			b.SetBytes(int64(OptimumBytes(n, size)))
			b.ReportAllocs()
			var wg sync.WaitGroup
			for rank := range size {
				wg.Go(func() {
					r := &Ring{Rank: rank, Size: size, T: mem.Transport(rank)}
					v := append([]float32(nil), in[rank]...)
					for i := range b.N {
						if _, err := r.AllReduce(context.Background(), 1, uint64(i), v); err != nil {
							b.Error(err)
							return
						}
						copy(v, in[rank])
					}
				})
			}
			wg.Wait()
		})
	}
}
