package grpcring

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	trainingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/training/v1"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/allreduce"
)

// Session is one generation's allreduce.Transport on this worker. Its outgoing stream is opened on
// the first Send; Close ends it. Safe for one sender and one receiver at a time.
type Session struct {
	hub        *Hub
	job        string
	gen        uint64
	rank, size int
	next       string
	inbox      chan allreduce.Message
	accepting  atomic.Bool
	prevOnce   sync.Once
	prevGone   chan struct{}
	prevErr    error
	ctx        context.Context
	cancel     context.CancelFunc
	sendMu     sync.Mutex
	out        grpc.ClientStreamingClient[trainingv1.ExchangeRequest, trainingv1.ExchangeResponse]
	outCancel  context.CancelFunc
	buf        []byte
	closeOnce  sync.Once
}

// Generation is the session's generation.
func (s *Session) Generation() uint64 { return s.gen }

func (s *Session) markPrevGone(err error) {
	s.prevOnce.Do(func() {
		if err == nil {
			err = fmt.Errorf("stream ended")
		}
		s.prevErr = err
		close(s.prevGone)
	})
}

// Send delivers m to the next rank. A send still blocked when ctx ends breaks the outgoing stream:
// the generation is over for this rank anyway.
func (s *Session) Send(ctx context.Context, m allreduce.Message) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if err := s.ctx.Err(); err != nil {
		return fmt.Errorf("session closed")
	}
	if s.out == nil {
		conn, err := s.hub.Conn(s.next)
		if err != nil {
			return fmt.Errorf("dial rank %d at %s: %w", (s.rank+1)%s.size, s.next, err)
		}
		octx, cancel := context.WithCancel(s.ctx)
		out, err := trainingv1.NewWorkerServiceClient(conn).Exchange(octx)
		if err != nil {
			cancel()
			return fmt.Errorf("open stream to rank %d at %s: %w", (s.rank+1)%s.size, s.next, err)
		}
		s.out, s.outCancel = out, cancel
	}
	s.buf = EncodeFloats(s.buf[:0], m.Data)
	req := &trainingv1.ExchangeRequest{
		JobId: s.job, Generation: s.gen, FromRank: uint32(s.rank), Step: m.Step, Phase: trainingv1.Phase(m.Phase),
		Round: m.Round, Segment: m.Segment, Offset: m.Offset, Data: s.buf, Reason: m.Reason,
	}
	stop := context.AfterFunc(ctx, s.outCancel)
	err := s.out.Send(req)
	stop()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("send to rank %d: %w", (s.rank+1)%s.size, ctx.Err())
		}
		// The stream's own error is only known from its end.
		if _, rerr := s.out.CloseAndRecv(); rerr != nil {
			err = rerr
		}
		return fmt.Errorf("send to rank %d: %w", (s.rank+1)%s.size, err)
	}
	return nil
}

// Recv returns the next message from the previous rank; once that stream has ended, what it had
// delivered is still returned first, then an error.
func (s *Session) Recv(ctx context.Context) (allreduce.Message, error) {
	select {
	case m := <-s.inbox:
		return m, nil
	default:
	}
	select {
	case m := <-s.inbox:
		return m, nil
	case <-s.prevGone:
		select {
		case m := <-s.inbox:
			return m, nil
		default:
		}
		return allreduce.Message{}, fmt.Errorf("%w: stream from rank %d: %v", allreduce.ErrPeerGone, (s.rank+s.size-1)%s.size, s.prevErr)
	case <-s.ctx.Done():
		return allreduce.Message{}, fmt.Errorf("session closed")
	case <-ctx.Done():
		return allreduce.Message{}, fmt.Errorf("receive from rank %d: %w", (s.rank+s.size-1)%s.size, ctx.Err())
	}
}

// Close ends the session: the outgoing stream is closed (the next rank sees its end) and the
// incoming one is refused from here on.
func (s *Session) Close() {
	s.closeOnce.Do(func() {
		if !s.sendMu.TryLock() {
			// A send is stuck (the next rank stopped reading): break the stream rather than wait.
			s.cancel()
			s.sendMu.Lock()
		}
		if s.out != nil {
			// Graceful first, so an abort just sent reaches the next rank before the stream ends.
			done := make(chan struct{})
			go func() { _, _ = s.out.CloseAndRecv(); close(done) }()
			select {
			case <-done:
			case <-time.After(time.Second):
			}
			s.outCancel()
		}
		s.sendMu.Unlock()
		s.cancel()
	})
}

// EncodeFloats appends v as little-endian float32 values.
func EncodeFloats(dst []byte, v []float32) []byte {
	for _, x := range v {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(x))
	}
	return dst
}

// DecodeFloats reads little-endian float32 values; a length that is not a multiple of 4 is an error.
func DecodeFloats(b []byte) ([]float32, error) {
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("%d bytes is not a whole number of float32 values", len(b))
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out, nil
}
