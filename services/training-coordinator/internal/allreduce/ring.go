// Package allreduce is the synchronous ring allreduce the training workers run every step:
// reduce-scatter, then all-gather, over a Transport that connects each rank to the next one in the
// ring. It knows nothing of gRPC (grpcring carries it between processes).
//
// Failure model: every receive has a deadline; a rank whose collective fails (a receive timed out,
// the previous rank's stream broke, a chunk was refused) sends an abort to the next rank before it
// returns, and a rank that receives an abort passes it on, so one failure ends the collective on
// every survivor within about one message delay per rank, never an unbounded wait.
//
// Reduction order: the vector is cut into N segments (sizes differ by at most one). Segment s is
// summed left to right in the rank order s, s+1, ..., N-1, 0, ..., s-1, the same order on every run
// and every rank, so the result is deterministic for a given N and, being a sum in one fixed order,
// equals bit for bit the serial sum taken in that order (Reference). For N ≤ 2 that is the plain
// serial sum g0 + g1 (float addition commutes); for N ≥ 3 segments other than 0 are associated
// differently from g0 + g1 + ... and may differ from it in the last bits.
package allreduce

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Phase of the collective a message belongs to.
type Phase uint8

const (
	ReduceScatter Phase = 1
	AllGather     Phase = 2
	// Abort says the sender's collective failed; the receiver fails too and passes it on.
	Abort Phase = 3
)

func (p Phase) String() string {
	switch p {
	case ReduceScatter:
		return "reduce-scatter"
	case AllGather:
		return "all-gather"
	case Abort:
		return "abort"
	}
	return fmt.Sprintf("phase(%d)", uint8(p))
}

// Message is one piece of a segment on its way to the next rank. Gen and Step tag it so that
// nothing from another generation or step is ever summed.
type Message struct {
	Gen, Step uint64
	Phase     Phase
	Round     uint32 // collective round within the phase, 0..N-2
	Segment   uint32 // ring segment the data belongs to
	Offset    uint32 // index of Data[0] within the segment
	Data      []float32
	Reason    string // Abort only
}

// Transport connects a rank to its ring neighbours. Send goes to the next rank, Recv returns the
// next message from the previous one; both honour ctx's deadline. A transport whose previous rank
// has gone (its stream broke) returns an error from Recv at once rather than waiting. A Recv that
// ends on its ctx has taken no message (the ring listens upstream while a send is blocked and
// cancels that listen once the send is through).
type Transport interface {
	Send(ctx context.Context, m Message) error
	Recv(ctx context.Context) (Message, error)
}

// Ring is one rank's view of a generation's ring.
type Ring struct {
	Rank, Size int
	T          Transport
	// Timeout bounds every receive (and send); default 5s.
	Timeout time.Duration
	// MaxChunk is the most values one message carries (default 256Ki, 1 MiB of float32).
	MaxChunk int

	// held are the messages received while a send was still blocked, oldest first, kept for the
	// next receives.
	held []Message
}

// Stats are one collective's figures.
type Stats struct {
	// BytesSent counts the float32 payload this rank sent (4 bytes a value).
	BytesSent uint64
	Messages  int
	Duration  time.Duration
}

// Error is a failed collective.
type Error struct {
	Rank   int
	Reason string
	// Remote is true when the failure came from another rank (an abort passed along the ring).
	Remote bool
	Err    error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("allreduce rank %d: %s", e.Rank, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// ErrRefused wraps every chunk the receiver refused (wrong tag, shape or non-finite values).
var ErrRefused = errors.New("chunk refused")

// OptimumBytes is the ring optimum a rank sends per allreduce of n float32 values: 2(N−1)/N × n × 4.
func OptimumBytes(n, size int) uint64 {
	if size <= 1 {
		return 0
	}
	return uint64(2 * (size - 1) * n * 4 / size)
}

// Segment returns the bounds of segment s of a vector of n values cut in size parts.
func Segment(n, size, s int) (lo, hi int) {
	return s * n / size, (s + 1) * n / size
}

// AllReduce replaces v by the element-wise sum of every rank's v. Every rank must call it with the
// same gen, step and len(v). v must be finite: a rank refuses to contribute NaN or Inf.
func (r *Ring) AllReduce(ctx context.Context, gen, step uint64, v []float32) (Stats, error) {
	start := time.Now()
	st := Stats{}
	if r.Size <= 1 {
		if i := firstNonFinite(v); i >= 0 {
			return st, &Error{Rank: r.Rank, Reason: fmt.Sprintf("own gradient has %v at %d", v[i], i), Err: ErrRefused}
		}
		st.Duration = time.Since(start)
		return st, nil
	}
	if r.Rank < 0 || r.Rank >= r.Size {
		return st, &Error{Rank: r.Rank, Reason: fmt.Sprintf("rank outside 0..%d", r.Size-1)}
	}
	err := r.run(ctx, gen, step, v, &st)
	st.Duration = time.Since(start)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = &Error{Rank: r.Rank, Reason: "collective failed", Err: err}
		}
		// Tell the next rank, so the failure travels round the ring instead of each survivor waiting
		// for its own deadline. Best effort: the next rank may be the one that died.
		abortCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout()/4+10*time.Millisecond)
		_ = r.T.Send(abortCtx, Message{Gen: gen, Step: step, Phase: Abort, Reason: e.Error()})
		cancel()
		return st, e
	}
	return st, nil
}

func (r *Ring) timeout() time.Duration {
	if r.Timeout <= 0 {
		return 5 * time.Second
	}
	return r.Timeout
}

func (r *Ring) maxChunk() int {
	if r.MaxChunk <= 0 {
		return 256 << 10
	}
	return r.MaxChunk
}

func (r *Ring) run(ctx context.Context, gen, step uint64, v []float32, st *Stats) error {
	if i := firstNonFinite(v); i >= 0 {
		return &Error{Rank: r.Rank, Reason: fmt.Sprintf("own gradient has %v at %d", v[i], i), Err: ErrRefused}
	}
	size := r.Size
	mod := func(x int) int { return ((x % size) + size) % size }
	// Reduce-scatter: in round k rank r sends segment r-k and adds segment r-k-1 from r-1 into its
	// own, so segment s accumulates in the rank order s, s+1, ... and rank r ends up owning r+1.
	for k := range size - 1 {
		if err := r.round(ctx, gen, step, ReduceScatter, k, mod(r.Rank-k), mod(r.Rank-k-1), v, st); err != nil {
			return err
		}
	}
	// All-gather: in round k rank r passes on segment r+1-k (complete) and receives segment r-k.
	for k := range size - 1 {
		if err := r.round(ctx, gen, step, AllGather, k, mod(r.Rank+1-k), mod(r.Rank-k), v, st); err != nil {
			return err
		}
	}
	return nil
}

// round sends one segment and receives another at the same time: a segment longer than the links
// buffer would otherwise leave every rank blocked in its send. The two touch different segments of
// v. The sender goroutine is owned here and always waited for; a failed receive cancels it.
func (r *Ring) round(ctx context.Context, gen, step uint64, ph Phase, k, sendSeg, recvSeg int, v []float32, st *Stats) error {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var serr error
	sendDone := make(chan struct{})
	go func() {
		defer close(sendDone)
		serr = r.sendSegment(rctx, gen, step, ph, k, sendSeg, v, st)
	}()
	rerr := r.recvSegment(rctx, gen, step, ph, k, recvSeg, v, ph == ReduceScatter)
	if rerr == nil {
		rerr = r.listenWhileSending(rctx, sendDone, len(v))
	}
	if rerr != nil {
		cancel()
	}
	<-sendDone
	if rerr != nil {
		return rerr
	}
	return serr
}

// listenWhileSending waits for a send still blocked after the round's segment has arrived. A next
// rank that failed has stopped reading, and its abort went on round the ring away from this rank;
// the abort reaches this rank from the previous one, so keep listening there and fail at once on
// it rather than at the send's deadline. The previous rank may be rounds ahead (up to N−2, each a
// segment) and send chunks of those before its abort: every other message is held, in order, for
// the next receives, at most limit values of them (then the send's deadline decides). A broken
// upstream stream is left for the next receive to report: the previous rank may simply have
// finished its last step and closed.
func (r *Ring) listenWhileSending(ctx context.Context, sendDone <-chan struct{}, limit int) error {
	select {
	case <-sendDone:
		return nil
	default:
	}
	held := 0
	for _, m := range r.held {
		held += len(m.Data)
	}
	type received struct {
		m   Message
		err error
	}
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	// One receive at a time, always waited for: a Recv that ends on its ctx takes no message.
	got := make(chan received, 1)
	listen := func() {
		go func() {
			m, err := r.T.Recv(lctx)
			got <- received{m, err}
		}()
	}
	listen()
	for {
		select {
		case <-sendDone:
			stop()
			if res := <-got; res.err == nil {
				r.held = append(r.held, res.m)
			}
			return nil
		case res := <-got:
			if res.err != nil {
				<-sendDone
				return nil
			}
			if res.m.Phase == Abort {
				return &Error{Rank: r.Rank, Reason: "aborted upstream (" + res.m.Reason + ")", Remote: true}
			}
			r.held = append(r.held, res.m)
			if held += len(res.m.Data); held > limit {
				<-sendDone
				return nil
			}
			listen()
		}
	}
}

// recv returns the held messages, oldest first, before the transport's next one.
func (r *Ring) recv(ctx context.Context) (Message, error) {
	if len(r.held) > 0 {
		m := r.held[0]
		r.held = r.held[1:]
		if len(r.held) == 0 {
			r.held = nil
		}
		return m, nil
	}
	return r.T.Recv(ctx)
}

func (r *Ring) sendSegment(ctx context.Context, gen, step uint64, ph Phase, round, seg int, v []float32, st *Stats) error {
	lo, hi := Segment(len(v), r.Size, seg)
	off := 0
	for first := true; first || lo+off < hi; first = false {
		end := min(hi, lo+off+r.maxChunk())
		m := Message{Gen: gen, Step: step, Phase: ph, Round: uint32(round), Segment: uint32(seg), Offset: uint32(off), Data: v[lo+off : end]}
		sctx, cancel := context.WithTimeout(ctx, r.timeout())
		err := r.T.Send(sctx, m)
		cancel()
		if err != nil {
			return &Error{Rank: r.Rank, Reason: fmt.Sprintf("send %s round %d to rank %d", ph, round, (r.Rank+1)%r.Size), Err: err}
		}
		st.BytesSent += uint64(4 * len(m.Data))
		st.Messages++
		off = end - lo
	}
	return nil
}

// recvSegment receives segment seg of round round from the previous rank, checks every tag, the
// shape and that every value is finite, then adds it into v (reduce) or copies it (gather).
func (r *Ring) recvSegment(ctx context.Context, gen, step uint64, ph Phase, round, seg int, v []float32, add bool) error {
	lo, hi := Segment(len(v), r.Size, seg)
	prev := (r.Rank + r.Size - 1) % r.Size
	off := 0
	for first := true; first || lo+off < hi; first = false {
		rctx, cancel := context.WithTimeout(ctx, r.timeout())
		m, err := r.recv(rctx)
		cancel()
		if err != nil {
			return &Error{Rank: r.Rank, Reason: fmt.Sprintf("receive %s round %d from rank %d", ph, round, prev), Err: err}
		}
		if m.Phase == Abort {
			return &Error{Rank: r.Rank, Reason: "aborted upstream (" + m.Reason + ")", Remote: true}
		}
		if err := check(m, gen, step, ph, round, seg, off, hi-lo); err != nil {
			return &Error{Rank: r.Rank, Reason: fmt.Sprintf("from rank %d", prev), Err: err}
		}
		dst := v[lo+off : lo+off+len(m.Data)]
		if add {
			for i, x := range m.Data {
				// The partial sum travelling round the ring goes first: segment s is summed in rank
				// order s, s+1, ... (see the package comment).
				dst[i] = x + dst[i]
			}
		} else {
			copy(dst, m.Data)
		}
		off += len(m.Data)
	}
	return nil
}

func check(m Message, gen, step uint64, ph Phase, round, seg, off, segLen int) error {
	switch {
	case m.Gen != gen:
		return fmt.Errorf("%w: generation %d, want %d", ErrRefused, m.Gen, gen)
	case m.Step != step:
		return fmt.Errorf("%w: step %d, want %d", ErrRefused, m.Step, step)
	case m.Phase != ph || int(m.Round) != round:
		return fmt.Errorf("%w: %s round %d, want %s round %d", ErrRefused, m.Phase, m.Round, ph, round)
	case int(m.Segment) != seg:
		return fmt.Errorf("%w: segment %d, want %d", ErrRefused, m.Segment, seg)
	case int(m.Offset) != off:
		return fmt.Errorf("%w: offset %d, want %d", ErrRefused, m.Offset, off)
	case off+len(m.Data) > segLen || (len(m.Data) == 0 && segLen > 0):
		return fmt.Errorf("%w: %d values at offset %d of a %d-value segment", ErrRefused, len(m.Data), off, segLen)
	}
	if i := firstNonFinite(m.Data); i >= 0 {
		return fmt.Errorf("%w: value %v at %d", ErrRefused, m.Data[i], off+i)
	}
	return nil
}

func firstNonFinite(v []float32) int {
	for i, x := range v {
		// x-x is 0 for every finite x and NaN for ±Inf and NaN.
		if x-x != 0 {
			return i
		}
	}
	return -1
}

// Reference is the sum AllReduce computes, serially: segment s of the result is
// in[s] + in[s+1] + ... + in[s-1] (ranks mod N), left to right.
func Reference(in [][]float32) []float32 {
	size := len(in)
	if size == 0 {
		return nil
	}
	n := len(in[0])
	out := make([]float32, n)
	for s := range size {
		lo, hi := Segment(n, size, s)
		for i := lo; i < hi; i++ {
			acc := in[s][i]
			for k := 1; k < size; k++ {
				acc = acc + in[(s+k)%size][i]
			}
			out[i] = acc
		}
	}
	return out
}

// IsFinite reports whether every value is neither NaN nor infinite.
func IsFinite(v []float32) bool { return firstNonFinite(v) < 0 }
