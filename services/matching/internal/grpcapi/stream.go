package grpcapi

import (
	"errors"
	"io"

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
func (s *Server) StreamOrders(stream matchingv1.MatchingService_StreamOrdersServer) error {
	out := make(chan *matchingv1.OrderUpdate, s.MaxInFlight)
	slots := make(chan struct{}, s.MaxInFlight)
	fills := s.x.FollowFills(s.MaxInFlight)
	defer fills.Close()

	sendDone := make(chan error, 1)
	go func() { sendDone <- s.sendUpdates(stream, out, fills) }()

	answer := func(u *matchingv1.OrderUpdate) {
		out <- u // never blocks: out holds MaxInFlight answers and each holds a slot
		<-slots
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			// Wait until every command in flight has been answered, then let the sender finish.
			for range s.MaxInFlight {
				slots <- struct{}{}
			}
			close(out)
			sendErr := <-sendDone
			if errors.Is(err, io.EOF) {
				return sendErr
			}
			return err
		}
		for _, cmd := range msg.GetCommands() {
			select {
			case slots <- struct{}{}:
			case err := <-sendDone:
				return err
			}
			s.dispatch(stream, cmd, fills, answer)
		}
	}
}

// sendUpdates writes answers and fills, packing whatever is ready into one message.
func (s *Server) sendUpdates(stream matchingv1.MatchingService_StreamOrdersServer, out <-chan *matchingv1.OrderUpdate, fills *exchange.FillStream) error {
	resp := &matchingv1.StreamOrdersResponse{}
	add := func(u *matchingv1.OrderUpdate) { resp.Updates = append(resp.Updates, u) }
	addFill := func(f exchange.Fill) {
		if spec, err := s.x.Spec(f.Symbol); err == nil {
			add(&matchingv1.OrderUpdate{Fills: []*matchingv1.Fill{fillToProto(spec, &f)}})
		}
	}
	for {
		select {
		case u, ok := <-out:
			if !ok {
				return nil
			}
			add(u)
		case f := <-fills.C:
			addFill(f)
		case <-fills.Done():
			return errs.New(errs.KindResourceExhausted, "fills were not read fast enough; reconnect and read your orders")
		case <-stream.Context().Done():
			return stream.Context().Err()
		}
		closed := false
	more:
		for len(resp.Updates) < maxUpdatesPerMessage {
			select {
			case u, ok := <-out:
				if !ok {
					closed = true
					break more
				}
				add(u)
			case f := <-fills.C:
				addFill(f)
			default:
				break more
			}
		}
		if err := stream.Send(resp); err != nil {
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
		s.x.Cancel(exchange.OrderRef{Account: req.GetAccountId(), Symbol: req.GetSymbol(), OrderID: req.GetOrderId(), ClientOrderID: req.GetClientOrderId()}, reply(spec))
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
