package matching_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bourse-dev/bourse/pkg/client"
	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
)

// TestSlowStreamDoesNotStopOthers (I4) with the real binaries: alice sends orders on StreamOrders
// and never reads. Matching cuts her stream off with ResourceExhausted (seen in its RPC metrics
// before she reads anything), bob's orders on the same symbol complete throughout, and every
// order of alice's that matching took is in the book although most answers never reached her.
func TestSlowStreamDoesNotStopOthers(t *testing.T) {
	p := startPlatform(t)
	p.addSymbol(t)
	// Fixed 64 KiB windows: the client's transport holds little, so the server's sends stall soon.
	conn, err := client.Dial(p.matching.GRPCAddr, client.Options{APIKey: aliceKey},
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stream, err := matchingv1.NewMatchingServiceClient(conn).StreamOrders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// More than the default window of 8192 commands, the 16384 answers buffered for the stream and
	// what the transport holds.
	const n = 40_000
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		msg := &matchingv1.StreamOrdersRequest{}
		for i := range n {
			msg.Commands = append(msg.Commands, &matchingv1.OrderCommand{RequestId: uint64(i + 1), Command: &matchingv1.OrderCommand_Submit{
				Submit: limitOrder("alice", fmt.Sprintf("slow-%d", i), buy, fmt.Sprintf("%d.5", 1000-i%100), "0.001")}})
			if len(msg.Commands) == 500 || i == n-1 {
				if stream.Send(msg) != nil {
					return
				}
				msg = &matchingv1.StreamOrdersRequest{}
			}
		}
	}()

	placed := 0
	bobOrder := func() {
		t.Helper()
		octx, ocancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ocancel()
		start := time.Now()
		resp, err := p.bob.SubmitOrder(octx, limitOrder("bob", fmt.Sprintf("bob-%d", placed), sell, fmt.Sprintf("%d", 2000+placed%100), "0.001"))
		if err != nil || resp.GetOrder().GetStatus() != matchingv1.OrderStatus_ORDER_STATUS_NEW {
			t.Fatalf("bob's order %d after %v while alice's stream stalls: %v %v", placed, time.Since(start), resp.GetOrder().GetStatus(), err)
		}
		placed++
	}
	deadline := time.Now().Add(90 * time.Second)
	for cutOff(t, p.matching.MetricsAddr) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("alice's stalled stream was not cut off within 90s")
		}
		bobOrder()
	}
	for range 50 {
		bobOrder()
	}

	answered := 0
	for {
		resp, err := stream.Recv()
		if err != nil {
			if st := status.Convert(err); st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "stream too slow") {
				t.Fatalf("alice's stream ended with %v %q, want ResourceExhausted \"stream too slow: ...\"", st.Code(), st.Message())
			}
			break
		}
		for _, u := range resp.GetUpdates() {
			if u.GetErrorCode() != 0 {
				t.Fatalf("alice's command %d refused: %s", u.GetRequestId(), u.GetErrorMessage())
			}
			answered++
		}
	}
	<-sent

	// The commands matching took are the stream's first k: all in the book, more than were answered.
	var k int
	for wait := time.Now().Add(20 * time.Second); ; {
		b := must(t)(p.admin.GetBook(context.Background(), &matchingv1.GetBookRequest{Symbol: "BTC-USD", Depth: 1000, IncludeOrders: true})).(*matchingv1.GetBookResponse)
		k = 0
		for _, o := range b.GetBidOrders() {
			if o.GetAccountId() == "alice" {
				k++
			}
		}
		last, err := p.alice.GetOrder(context.Background(), &matchingv1.GetOrderRequest{AccountId: "alice", Symbol: "BTC-USD", ClientOrderId: fmt.Sprintf("slow-%d", k-1)})
		if err == nil && last.GetOrder().GetStatus() == matchingv1.OrderStatus_ORDER_STATUS_NEW {
			break
		}
		if time.Now().After(wait) {
			t.Fatalf("%d of alice's orders in the book, but slow-%d is not: %v", k, k-1, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if k <= answered || k >= n {
		t.Fatalf("%d of alice's orders in the book, %d answered, %d sent", k, answered, n)
	}
	for i := 0; i < k; i += 97 {
		got, err := p.alice.GetOrder(context.Background(), &matchingv1.GetOrderRequest{AccountId: "alice", Symbol: "BTC-USD", ClientOrderId: fmt.Sprintf("slow-%d", i)})
		if err != nil || got.GetOrder().GetStatus() != matchingv1.OrderStatus_ORDER_STATUS_NEW {
			t.Fatalf("alice's order slow-%d (of %d taken): %v %v", i, k, got.GetOrder().GetStatus(), err)
		}
	}
	t.Logf("alice: %d sent, %d taken, %d answered before the cut; bob: %d orders placed meanwhile", n, k, answered, placed)
}

// cutOff reads from matching's metrics how many StreamOrders calls ended with ResourceExhausted.
func cutOff(t *testing.T, metricsAddr string) int {
	t.Helper()
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "grpc_server_handled_total{") && strings.Contains(line, `grpc_method="StreamOrders"`) &&
			strings.Contains(line, `grpc_code="ResourceExhausted"`) {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				t.Fatalf("metrics line %q: %v", line, err)
			}
			return int(v)
		}
	}
	return 0
}
