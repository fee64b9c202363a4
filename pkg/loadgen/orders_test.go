package loadgen

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
)

// fakeMatching answers every StreamOrders command as matching does for a non-crossing order: one
// update with the command's request id, the order NEW (a cancel CANCELED). It counts the commands.
type fakeMatching struct {
	matchingv1.UnimplementedMatchingServiceServer
	commands atomic.Int64
}

func (f *fakeMatching) StreamOrders(stream grpc.BidiStreamingServer[matchingv1.StreamOrdersRequest, matchingv1.StreamOrdersResponse]) error {
	for {
		req, err := stream.Recv()
		if err != nil {
			return nil
		}
		resp := &matchingv1.StreamOrdersResponse{}
		for _, c := range req.GetCommands() {
			f.commands.Add(1)
			o := &matchingv1.Order{Status: matchingv1.OrderStatus_ORDER_STATUS_NEW}
			if s := c.GetSubmit(); s != nil {
				o.AccountId, o.ClientOrderId = s.GetAccountId(), s.GetClientOrderId()
			} else {
				o.Status = matchingv1.OrderStatus_ORDER_STATUS_CANCELLED
			}
			resp.Updates = append(resp.Updates, &matchingv1.OrderUpdate{RequestId: c.GetRequestId(), Order: o})
		}
		if err := stream.Send(resp); err != nil {
			return nil
		}
	}
}

func dialFake(t *testing.T, f *fakeMatching) matchingv1.MatchingServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	matchingv1.RegisterMatchingServiceServer(srv, f)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return matchingv1.NewMatchingServiceClient(cc)
}

// A run sends exactly the commands it was asked for, whatever the split over streams: the progress
// bar of `bourse bench orders` divides by Orders, so a remainder left unsent never reaches 100%.
func TestRunSendsEveryCommand(t *testing.T) {
	for _, tc := range []struct{ orders, streams int }{{10, 4}, {3, 4}, {1, 2}, {1000, 3}, {8, 4}} {
		f := &fakeMatching{}
		mc := dialFake(t, f)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		res, err := Orders{Symbol: "BTC-USD", Buyer: "a", Seller: "b", Streams: tc.streams, Orders: tc.orders, Window: 8, Batch: 3,
			Cancels: true, Bid: 1000, Qty: "1"}.Run(ctx, mc)
		cancel()
		if err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		if res.Done != int64(tc.orders) || f.commands.Load() != int64(tc.orders) || len(res.Latencies) != tc.orders {
			t.Errorf("%d orders on %d streams: %d answered, %d received by matching, %d latencies", tc.orders, tc.streams,
				res.Done, f.commands.Load(), len(res.Latencies))
		}
	}
}

// The histogram draws any latencies, even ones below its first bucket, without panicking.
func TestHistogramOfTinyLatencies(t *testing.T) {
	for _, lats := range [][]time.Duration{{0}, {time.Microsecond, 5 * time.Microsecond}, {7 * time.Microsecond}, {8 * time.Microsecond, time.Millisecond}} {
		lines := Result{Latencies: lats}.Histogram(10)
		if len(lines) == 0 {
			t.Errorf("%v: no lines", lats)
		}
	}
}
