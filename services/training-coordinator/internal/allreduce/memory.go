package allreduce

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrPeerGone is what Send and Recv return once the link is broken (the in-process
// equivalent of a broken stream).
var ErrPeerGone = errors.New("peer is gone")

// MemoryRing connects size ranks in one process with bounded channels, for tests and for a
// single-process trainer. Each link holds at most depth messages; a full link blocks the sender
// until the receiver drains it or the send's deadline passes.
type MemoryRing struct {
	links []*memLink // links[r] carries rank r's messages to rank r+1
}

type memLink struct {
	ch chan Message
	// closed: the sender has gone; readerGone: the receiver has gone.
	once, readerOnce   sync.Once
	closed, readerGone chan struct{}
}

// NewMemoryRing builds the links of a ring of size ranks.
func NewMemoryRing(size, depth int) *MemoryRing {
	m := &MemoryRing{links: make([]*memLink, size)}
	for i := range m.links {
		m.links[i] = &memLink{ch: make(chan Message, depth), closed: make(chan struct{}), readerGone: make(chan struct{})}
	}
	return m
}

// Transport is rank's end: it sends on its own link and receives on the previous rank's.
func (m *MemoryRing) Transport(rank int) Transport {
	size := len(m.links)
	return &memTransport{out: m.links[rank], in: m.links[(rank+size-1)%size]}
}

// Kill breaks both of rank's links, as a crashed process's connections would: the next rank's Recv
// fails at once, and so do the previous rank's sends to it.
func (m *MemoryRing) Kill(rank int) {
	out, in := m.links[rank], m.links[(rank+len(m.links)-1)%len(m.links)]
	out.once.Do(func() { close(out.closed) })
	in.readerOnce.Do(func() { close(in.readerGone) })
}

type memTransport struct {
	out, in *memLink
}

func (t *memTransport) Send(ctx context.Context, msg Message) error {
	select {
	case <-t.out.closed:
		return ErrPeerGone
	case <-t.out.readerGone:
		return ErrPeerGone
	default:
	}
	// The receiver adds into its own vector: give it a copy, as a network would.
	msg.Data = append([]float32(nil), msg.Data...)
	select {
	case t.out.ch <- msg:
		return nil
	case <-t.out.closed:
		return ErrPeerGone
	case <-t.out.readerGone:
		return ErrPeerGone
	case <-ctx.Done():
		return fmt.Errorf("send: %w", ctx.Err())
	}
}

func (t *memTransport) Recv(ctx context.Context) (Message, error) {
	select {
	case msg := <-t.in.ch:
		return msg, nil
	case <-t.in.closed:
		return Message{}, ErrPeerGone
	case <-ctx.Done():
		return Message{}, fmt.Errorf("receive: %w", ctx.Err())
	}
}
