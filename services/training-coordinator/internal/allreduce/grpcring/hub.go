// Package grpcring carries the ring allreduce between worker processes: each rank opens one client
// stream (WorkerService.Exchange) to the next rank per generation and receives, on its own server,
// the stream of the previous rank. Every stream and chunk is tagged with the job and generation; the
// receiver refuses anything of another one.
package grpcring

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	trainingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/training/v1"
	"github.com/bourse-dev/bourse/services/training-coordinator/internal/allreduce"
)

// inboxDepth bounds the messages buffered from the previous rank; past it the stream's flow control
// holds the sender back.
const inboxDepth = 64

// DialFunc connects to a peer's WorkerService address.
type DialFunc func(addr string) (*grpc.ClientConn, error)

// Hub is a worker's end of the ring: it serves Exchange for the current generation's session and
// dials the next rank. It owns the peer connections (closed by Close).
type Hub struct {
	trainingv1.UnimplementedWorkerServiceServer

	dial DialFunc
	log  *slog.Logger
	// AcceptWait bounds how long an incoming stream waits for this worker to open the session of
	// its generation (the previous rank may learn of the generation first).
	AcceptWait time.Duration

	mu      sync.Mutex
	cur     *Session
	changed chan struct{} // closed and replaced whenever cur changes
	conns   map[string]*grpc.ClientConn
}

// NewHub returns a hub that dials peers with dial.
func NewHub(dial DialFunc, log *slog.Logger) *Hub {
	return &Hub{dial: dial, log: log, AcceptWait: 5 * time.Second, changed: make(chan struct{}), conns: map[string]*grpc.ClientConn{}}
}

// Open starts this worker's session for a generation, ending the previous one. next is the address
// of rank+1; with size 1 there is no peer.
func (h *Hub) Open(job string, gen uint64, rank, size int, next string) *Session {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Session{
		hub: h, job: job, gen: gen, rank: rank, size: size, next: next,
		inbox: make(chan allreduce.Message, inboxDepth), prevGone: make(chan struct{}),
		ctx: ctx, cancel: cancel,
	}
	h.mu.Lock()
	old := h.cur
	h.cur = s
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return s
}

// Close ends the current session and closes every peer connection.
func (h *Hub) Close() {
	h.mu.Lock()
	cur := h.cur
	h.cur = nil
	conns := h.conns
	h.conns = map[string]*grpc.ClientConn{}
	h.mu.Unlock()
	if cur != nil {
		cur.Close()
	}
	for _, c := range conns {
		_ = c.Close()
	}
}

// Conn returns the hub's connection to a peer, dialling it on first use.
func (h *Hub) Conn(addr string) (*grpc.ClientConn, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c, ok := h.conns[addr]; ok {
		return c, nil
	}
	c, err := h.dial(addr)
	if err != nil {
		return nil, err
	}
	h.conns[addr] = c
	return c, nil
}

// session waits, at most AcceptWait, until the session of (job, gen) is current. A newer
// generation, another job, or the wait running out refuses the stream.
func (h *Hub) session(ctx context.Context, job string, gen uint64) (*Session, error) {
	deadline := time.NewTimer(h.AcceptWait)
	defer deadline.Stop()
	for {
		h.mu.Lock()
		cur, changed := h.cur, h.changed
		h.mu.Unlock()
		switch {
		case cur != nil && cur.job == job && cur.gen == gen:
			return cur, nil
		case cur != nil && cur.job == job && cur.gen > gen:
			return nil, status.Errorf(codes.FailedPrecondition, "generation: %d is stale (current %d)", gen, cur.gen)
		}
		select {
		case <-changed:
		case <-deadline.C:
			return nil, status.Errorf(codes.FailedPrecondition, "generation: no session for job %q generation %d on this worker", job, gen)
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
}

// Exchange receives the previous rank's stream for one generation.
func (h *Hub) Exchange(stream grpc.ClientStreamingServer[trainingv1.ExchangeRequest, trainingv1.ExchangeResponse]) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	if first.GetJobId() == "" {
		return status.Error(codes.InvalidArgument, "job_id: required")
	}
	s, err := h.session(stream.Context(), first.GetJobId(), first.GetGeneration())
	if err != nil {
		return err
	}
	if prev := (s.rank + s.size - 1) % s.size; int(first.GetFromRank()) != prev || s.size < 2 {
		return status.Errorf(codes.FailedPrecondition, "from_rank: %d is not the previous rank (%d) of rank %d in a ring of %d", first.GetFromRank(), prev, s.rank, s.size)
	}
	if !s.accepting.CompareAndSwap(false, true) {
		return status.Error(codes.AlreadyExists, "generation: this rank already has a stream from its previous rank")
	}
	err = s.receive(stream, first)
	s.markPrevGone(err)
	if errors.Is(err, io.EOF) || err == nil {
		return stream.SendAndClose(&trainingv1.ExchangeResponse{})
	}
	return err
}

// receive pushes each message into the inbox until the stream ends or the session closes.
func (s *Session) receive(stream grpc.ClientStreamingServer[trainingv1.ExchangeRequest, trainingv1.ExchangeResponse], m *trainingv1.ExchangeRequest) error {
	for {
		if m.GetJobId() != s.job || m.GetGeneration() != s.gen {
			return status.Errorf(codes.FailedPrecondition, "generation: chunk of job %q generation %d on the stream of %q generation %d", m.GetJobId(), m.GetGeneration(), s.job, s.gen)
		}
		msg, err := decode(m)
		if err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
		select {
		case s.inbox <- msg:
		case <-s.ctx.Done():
			return status.Error(codes.FailedPrecondition, "generation: session closed")
		case <-stream.Context().Done():
			return stream.Context().Err()
		}
		if m, err = stream.Recv(); err != nil {
			return err
		}
	}
}

func decode(m *trainingv1.ExchangeRequest) (allreduce.Message, error) {
	out := allreduce.Message{
		Gen: m.GetGeneration(), Step: m.GetStep(), Phase: allreduce.Phase(m.GetPhase()),
		Round: m.GetRound(), Segment: m.GetSegment(), Offset: m.GetOffset(), Reason: m.GetReason(),
	}
	// The ring adds or copies each chunk into its own vector and keeps nothing, so the values may
	// alias the message's bytes instead of being copied once more.
	data, err := viewFloats(m.GetData())
	if err != nil {
		return out, fmt.Errorf("data: %w", err)
	}
	out.Data = data
	return out, nil
}
