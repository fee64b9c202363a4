package grpcapi

import (
	"errors"
	"io"
	"sync"

	"google.golang.org/grpc/status"

	"github.com/bourse-dev/bourse/pkg/auth"
	"github.com/bourse-dev/bourse/pkg/errs"
	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
	"github.com/bourse-dev/bourse/pkg/server"
	"github.com/bourse-dev/bourse/services/matching/internal/exchange"
)

// maxUpdatesPerMessage bounds how many ready answers one response message carries.
const maxUpdatesPerMessage = 512

// StreamOrders keeps up to MaxInFlight commands of one stream in the exchange at once; answers go
// back as they complete (not necessarily in request order), packed together when several are ready,
// and fills of the stream's accounts' resting orders follow as updates with request_id 0. A refused
// command is answered with its error code; the stream stays open.
//
// Answers never wait for the client: they join a buffer of twice MaxInFlight updates (a full
// window in the exchange and as many answers waiting for the client), and a client that lets it
// fill, sending without reading, is cut off with ResourceExhausted. Its commands already taken
// still complete; the client finds them with GetOrder by client_order_id.
func (s *Server) StreamOrders(stream matchingv1.MatchingService_StreamOrdersServer) error {
	o := &ordersStream{s: s, stream: stream,
		out:   make(chan *matchingv1.OrderUpdate, 2*s.MaxInFlight),
		slots: make(chan struct{}, s.MaxInFlight),
		fills: s.x.FollowFills(s.MaxInFlight),
		stop:  make(chan struct{}), cut: make(chan struct{})}
	defer o.fills.Close()
	// Returning ends the gRPC stream, which wakes a receive blocked in Recv or a send blocked in Send.
	defer close(o.stop)
	recvDone, sendDone := make(chan error, 1), make(chan error, 1)
	go func() { recvDone <- o.receive() }()
	go func() { sendDone <- o.send() }()
	for {
		select {
		case err := <-sendDone:
			return err // nil once the client closed its side and every answer went out
		case err := <-recvDone:
			if err != nil {
				return err
			}
			recvDone = nil // the client closed its side: the sender finishes the answers
		case <-o.cut:
			return errs.New(errs.KindResourceExhausted, "stream too slow: %d answers unread; reconnect, and look up unanswered commands with GetOrder", cap(o.out))
		case <-o.fills.Done():
			return errs.New(errs.KindResourceExhausted, "stream too slow: fills were not read fast enough; reconnect and read your orders")
		}
	}
}

// ordersStream is one StreamOrders call. The handler goroutine starts receive and send and
// returns when either ends or the stream is cut off; neither is waited for, since each may be
// blocked on the client until the stream ends. Exchange goroutines (shards, risk checks) call
// answer, which never blocks.
type ordersStream struct {
	s      *Server
	stream matchingv1.MatchingService_StreamOrdersServer
	out    chan *matchingv1.OrderUpdate
	// slots holds one token per command in the exchange; answer gives it back.
	slots   chan struct{}
	fills   *exchange.FillStream
	stop    chan struct{} // closed when the handler returns
	cut     chan struct{} // closed when out overflowed
	cutOnce sync.Once
}

// answer queues one command's answer; a full buffer cuts the stream off and drops the answer.
func (o *ordersStream) answer(u *matchingv1.OrderUpdate) {
	select {
	case o.out <- u:
	default:
		o.cutOnce.Do(func() { close(o.cut) })
	}
	<-o.slots
}

// receive reads commands and starts them, one slot each. When the client closes its side it
// waits for every command in flight to be answered, then closes out for the sender.
func (o *ordersStream) receive() error {
	answer := o.answer // one method value for the stream, not one allocation per command
	for {
		msg, err := o.stream.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return err
			}
			for range cap(o.slots) {
				if !o.acquire() {
					return nil
				}
			}
			close(o.out) // safe: with every slot held, no answer is on its way
			return nil
		}
		for _, cmd := range msg.GetCommands() {
			if !o.acquire() {
				return nil
			}
			o.s.dispatch(o.stream, cmd, o.fills, answer)
		}
	}
}

// send writes answers and fills, packing whatever is ready into one message.
// acquire takes an in-flight slot; false means the stream was cut off or is stopping.
func (o *ordersStream) acquire() bool {
	select {
	case o.slots <- struct{}{}:
		return true
	case <-o.cut:
		return false
	case <-o.stop:
		return false
	}
}

func (o *ordersStream) send() error {
	resp := &matchingv1.StreamOrdersResponse{}
	add := func(u *matchingv1.OrderUpdate) { resp.Updates = append(resp.Updates, u) }
	addFill := func(f exchange.Fill) {
		if spec, err := o.s.x.Spec(f.Symbol); err == nil {
			add(&matchingv1.OrderUpdate{Fills: []*matchingv1.Fill{fillToProto(spec, &f)}})
		}
	}
	for {
		select {
		case u, ok := <-o.out:
			if !ok {
				return nil
			}
			add(u)
		case f := <-o.fills.C:
			addFill(f)
		case <-o.stop:
			return nil
		}
		closed := false
	more:
		for len(resp.Updates) < maxUpdatesPerMessage {
			select {
			case u, ok := <-o.out:
				if !ok {
					closed = true
					break more
				}
				add(u)
			case f := <-o.fills.C:
				addFill(f)
			default:
				break more
			}
		}
		if err := o.stream.Send(resp); err != nil {
			return err
		}
		clear(resp.Updates)
		resp.Updates = resp.Updates[:0]
		if closed {
			return nil
		}
	}
}

// dispatch starts one command; answer runs exactly once.
func (s *Server) dispatch(stream matchingv1.MatchingService_StreamOrdersServer, cmd *matchingv1.OrderCommand, fills *exchange.FillStream,
	answer func(*matchingv1.OrderUpdate)) {
	id := cmd.GetRequestId()
	fail := func(err error) {
		st := status.Convert(server.ToStatus(err))
		answer(&matchingv1.OrderUpdate{RequestId: id, ErrorCode: int32(st.Code()), ErrorMessage: st.Message()})
	}
	ctx := stream.Context()
	reply := func(spec *exchange.Spec) func(exchange.Result) {
		return func(r exchange.Result) {
			if r.Err != nil {
				fail(r.Err)
				return
			}
			answer(&matchingv1.OrderUpdate{RequestId: id, Order: orderToProto(spec, &r.Order), Fills: fillsToProto(spec, r.Fills), Duplicate: r.Duplicate})
		}
	}
	switch c := cmd.GetCommand().(type) {
	case *matchingv1.OrderCommand_Submit:
		if err := auth.RequireAccess(ctx, c.Submit.GetAccountId()); err != nil {
			fail(err)
			return
		}
		spec, or, err := s.orderRequest(c.Submit)
		if err != nil {
			fail(err)
			return
		}
		fills.Follow(or.Account)
		s.x.Submit(ctx, or, reply(spec))
	case *matchingv1.OrderCommand_Cancel:
		req := c.Cancel
		if err := auth.RequireAccess(ctx, req.GetAccountId()); err != nil {
			fail(err)
			return
		}
		spec, err := s.x.Spec(req.GetSymbol())
		if err != nil {
			fail(err)
			return
		}
		s.x.CancelTraced(ctx, exchange.OrderRef{Account: req.GetAccountId(), Symbol: req.GetSymbol(), OrderID: req.GetOrderId(), ClientOrderID: req.GetClientOrderId()}, reply(spec))
	case *matchingv1.OrderCommand_Amend:
		if err := auth.RequireAccess(ctx, c.Amend.GetAccountId()); err != nil {
			fail(err)
			return
		}
		spec, ar, err := s.amendRequest(c.Amend)
		if err != nil {
			fail(err)
			return
		}
		s.x.Amend(ctx, ar, reply(spec))
	default:
		fail(errs.Invalid("command", "one of submit, cancel and amend is required"))
	}
}
