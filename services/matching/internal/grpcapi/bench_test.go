package grpcapi

import (
	"context"
	"fmt"
	"io"
	"testing"

	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
)

// BenchmarkStreamOrders: b.N resting orders through one StreamOrders stream over loopback, 100
// commands per message and at most 4000 unanswered (as matching-load drives it), into an exchange
// without fsync: the cost of the gRPC layer and the answer path from the shard to the stream.
func BenchmarkStreamOrders(b *testing.B) {
	ts := startServer(b, nil)
	mc := ts.dial(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := mc.StreamOrders(ctx)
	if err != nil {
		b.Fatal(err)
	}
	const window, batch = 4000, 100
	credits := make(chan struct{}, window)
	recvErr := make(chan error, 1)
	go func() {
		answered := 0
		for answered < b.N {
			resp, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			for _, u := range resp.GetUpdates() {
				if u.GetRequestId() == 0 {
					continue
				}
				if u.GetErrorCode() != 0 {
					recvErr <- fmt.Errorf("order %d refused: %s", u.GetRequestId(), u.GetErrorMessage())
					return
				}
				answered++
				<-credits
			}
		}
		recvErr <- nil
	}()
	b.ReportAllocs()
	b.ResetTimer()
	msg := &matchingv1.StreamOrdersRequest{}
	for i := range b.N {
		credits <- struct{}{}
		msg.Commands = append(msg.Commands, &matchingv1.OrderCommand{RequestId: uint64(i + 1),
			Command: &matchingv1.OrderCommand_Submit{Submit: restingOrder(fmt.Sprintf("a%d", i%8), "b", i)}})
		if len(msg.Commands) == batch || i == b.N-1 || len(credits) == cap(credits) {
			if err := stream.Send(msg); err != nil {
				b.Fatal(err)
			}
			msg = &matchingv1.StreamOrdersRequest{}
		}
	}
	if err := <-recvErr; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
	_ = stream.CloseSend()
	if _, err := stream.Recv(); err != io.EOF {
		b.Fatalf("stream end: %v", err)
	}
}
