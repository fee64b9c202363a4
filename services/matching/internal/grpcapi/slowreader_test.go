package grpcapi

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
)

// orderLimit is how long another client's order may take while a slow stream is being dealt with:
// generous (orders take well under a millisecond here), yet far below "frozen for good".
const orderLimit = 5 * time.Second

// floodOrders sends n resting orders of account on stream, 250 per message, without reading, and
// closes the returned channel when it stops (all sent, or the stream ended).
func floodOrders(stream matchingv1.MatchingService_StreamOrdersClient, account string, n int) <-chan struct{} {
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		msg := &matchingv1.StreamOrdersRequest{}
		for i := range n {
			msg.Commands = append(msg.Commands, &matchingv1.OrderCommand{RequestId: uint64(i + 1),
				Command: &matchingv1.OrderCommand_Submit{Submit: restingOrder(account, "s", i)}})
			if len(msg.Commands) == 250 || i == n-1 {
				if stream.Send(msg) != nil {
					return
				}
				msg = &matchingv1.StreamOrdersRequest{}
			}
		}
	}()
	return sent
}

// waitCutOrFailure waits for the method's handler to return while w keeps placing orders; another
// client's failed or slow order fails the test at once.
func waitCutOrFailure(t *testing.T, ts *testServer, method string, w *orderWorker) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case m := <-ts.ended:
			if m != method {
				continue
			}
			select {
			case <-w.done:
				t.Fatalf("another client's order failed while a stream stalled: %v", w.err)
			default:
			}
			return
		case <-w.done:
			t.Fatalf("another client's order failed while a stream stalled: %v", w.err)
		case <-deadline:
			t.Fatalf("the stalled stream's %s handler did not return within 30s", method)
		}
	}
}

// keepPlacing waits until w has placed more orders, proving the symbol still trades.
func keepPlacing(t *testing.T, w *orderWorker, more int64) {
	t.Helper()
	want := w.placed.Load() + more
	deadline := time.Now().Add(30 * time.Second)
	for w.placed.Load() < want {
		select {
		case <-w.done:
			t.Fatalf("another client's order failed: %v", w.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("another client placed %d orders in 30s, want %d", w.placed.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// expectCut reads what the server sent before it cut the stream off, then the status, which must
// be ResourceExhausted naming the cause. It returns the request ids that were answered.
func expectCut(t *testing.T, recv func() ([]uint64, error)) map[uint64]bool {
	t.Helper()
	answered := map[uint64]bool{}
	for {
		ids, err := recv()
		if err != nil {
			st := status.Convert(err)
			if st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "stream too slow") {
				t.Fatalf("slow stream ended with %v %q, want ResourceExhausted \"stream too slow: ...\"", st.Code(), st.Message())
			}
			return answered
		}
		for _, id := range ids {
			answered[id] = true
		}
	}
}

// TestStreamOrdersSlowReaderIsCutOff: a StreamOrders client sends orders and never reads. Its
// stream is cut off with ResourceExhausted, its handler and goroutines end, every command the
// server had taken from it completes (in the book, visible with GetOrder), and another client's
// orders on the same symbol keep completing throughout.
func TestStreamOrdersSlowReaderIsCutOff(t *testing.T) {
	ts := startServer(t, func(s *Server) { s.MaxInFlight = 64 })
	slow, fast := ts.dial(t), ts.dial(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	stream, err := slow.StreamOrders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 5000 // far more answers than the flow-control windows and the stream's buffer hold
	sent := floodOrders(stream, "slow", n)
	stop := make(chan struct{})
	w := placeOrders(fast, "fast", orderLimit, stop)
	waitCutOrFailure(t, ts, matchingv1.MatchingService_StreamOrders_FullMethodName, w)
	keepPlacing(t, w, 50)
	if err := w.finish(stop); err != nil {
		t.Fatal(err)
	}

	// The flooding Send may be blocked too; the end of the stream reaches it after what is read here.
	answered := expectCut(t, func() ([]uint64, error) {
		resp, err := stream.Recv()
		var ids []uint64
		for _, u := range resp.GetUpdates() {
			if u.GetErrorCode() != 0 {
				t.Fatalf("command %d refused: %s", u.GetRequestId(), u.GetErrorMessage())
			}
			ids = append(ids, u.GetRequestId())
		}
		return ids, err
	})
	<-sent
	if len(answered) >= n {
		t.Fatalf("%d of %d commands answered before the cut", len(answered), n)
	}
	waitNoServerGoroutines(t)

	// The commands taken from the stream are the first k (dispatch follows the stream's order);
	// each completes although its answer may have been dropped.
	var k int
	deadline := time.Now().Add(10 * time.Second)
	for {
		k = slowOrdersInBook(t, fast)
		missing := firstMissing(t, fast, k)
		if missing < 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the book holds %d orders of the slow stream but s-%d is not one of them", k, missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The answer whose push found the buffer full belongs to a command that completed too.
	if k <= len(answered) {
		t.Fatalf("%d commands completed, %d answered: the commands in flight at the cut are lost", k, len(answered))
	}
	for id := range answered {
		if int(id) > k {
			t.Fatalf("request %d was answered but its order is not in the book (%d are)", id, k)
		}
	}
}

// TestStreamOrdersClientLeavingFreesItsShard: a client that stalls its stream and then goes away
// leaves nothing behind: the handler ends, no goroutine of it is left, and the shard keeps working.
func TestStreamOrdersClientLeavingFreesItsShard(t *testing.T) {
	ts := startServer(t, func(s *Server) { s.MaxInFlight = 64 })
	slow, fast := ts.dial(t), ts.dial(t)
	ctx, cancel := context.WithCancel(t.Context())
	stream, err := slow.StreamOrders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sent := floodOrders(stream, "slow", 5000)
	stop := make(chan struct{})
	w := placeOrders(fast, "fast", orderLimit, stop)
	keepPlacing(t, w, 20)
	cancel()
	<-sent
	ts.waitEnded(t, matchingv1.MatchingService_StreamOrders_FullMethodName, 30*time.Second)
	keepPlacing(t, w, 50)
	if err := w.finish(stop); err != nil {
		t.Fatal(err)
	}
	waitNoServerGoroutines(t)
}

func slowOrdersInBook(t *testing.T, mc matchingv1.MatchingServiceClient) int {
	t.Helper()
	b, err := mc.GetBook(t.Context(), &matchingv1.GetBookRequest{Symbol: "BTC-USD", Depth: 1000, IncludeOrders: true})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, o := range append(b.GetBidOrders(), b.GetAskOrders()...) {
		if o.GetAccountId() == "slow" {
			n++
		}
	}
	return n
}

// firstMissing returns the first of the slow stream's orders s-0 .. s-(k-1) that GetOrder does not
// find open, or -1.
func firstMissing(t *testing.T, mc matchingv1.MatchingServiceClient, k int) int {
	t.Helper()
	for i := range k {
		resp, err := mc.GetOrder(t.Context(), &matchingv1.GetOrderRequest{AccountId: "slow", Symbol: "BTC-USD", ClientOrderId: fmt.Sprintf("s-%d", i)})
		if err != nil || resp.GetOrder().GetStatus() != matchingv1.OrderStatus_ORDER_STATUS_NEW {
			return i
		}
	}
	return -1
}

// TestStreamMarketDataSlowReaderIsCutOff: a market-data subscriber that never reads is cut off
// with ResourceExhausted and its handler ends, while another client's orders on the symbol (each
// one a market-data update) keep completing.
func TestStreamMarketDataSlowReaderIsCutOff(t *testing.T) {
	ts := startServer(t, func(s *Server) { s.MarketDataBuffer = 64 })
	slow, fast := ts.dial(t), ts.dial(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	md, err := slow.StreamMarketData(ctx, &matchingv1.StreamMarketDataRequest{Symbols: []string{"BTC-USD"}})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := md.Recv() // the snapshot: the subscription is in place
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	w := streamOrders(fast, "fast", orderLimit, stop)
	waitCutOrFailure(t, ts, matchingv1.MatchingService_StreamMarketData_FullMethodName, w)
	keepPlacing(t, w, 500)
	if err := w.finish(stop); err != nil {
		t.Fatal(err)
	}
	// What was sent before the cut is complete and in sequence; then the status.
	want := snap.GetSequence() + 1
	expectCut(t, func() ([]uint64, error) {
		u, err := md.Recv()
		if err == nil {
			if u.GetSequence() != want {
				t.Fatalf("update %d after %d: a gap before the cut", u.GetSequence(), want-1)
			}
			want++
		}
		return nil, err
	})
	waitNoServerGoroutines(t)
}

// TestStreamMarketDataRepeatedSymbol: one request naming a symbol 200,000 times is one
// subscription: one snapshot, then the updates, and other clients' orders are not refused.
func TestStreamMarketDataRepeatedSymbol(t *testing.T) {
	ts := startServer(t, nil)
	sub, other := ts.dial(t), ts.dial(t)
	names := make([]string, 200_000)
	for i := range names {
		names[i] = "BTC-USD"
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	stop := make(chan struct{})
	w := placeOrders(other, "other", orderLimit, stop)
	md, err := sub.StreamMarketData(ctx, &matchingv1.StreamMarketDataRequest{Symbols: names})
	if err != nil {
		t.Fatal(err)
	}
	first, err := md.Recv()
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if first.GetSnapshot() == nil {
		t.Fatalf("first update is not a snapshot: %v", first)
	}
	keepPlacing(t, w, 20)
	if err := w.finish(stop); err != nil {
		t.Fatal(err)
	}
	// Every later update is a delta in sequence: a second snapshot would mean a second subscription.
	want := first.GetSequence() + 1
	for range 20 {
		u, err := md.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if u.GetSnapshot() != nil || u.GetSequence() != want {
			t.Fatalf("update %d: snapshot=%v, want delta %d", u.GetSequence(), u.GetSnapshot() != nil, want)
		}
		want++
	}
}

// TestStreamMarketDataLimits: past the cap of distinct symbols, and past the depth cap, the
// request is refused naming the field.
func TestStreamMarketDataLimits(t *testing.T) {
	ts := startServer(t, nil)
	mc := ts.dial(t)
	many := make([]string, maxSubscribeSymbols+1)
	for i := range many {
		many[i] = fmt.Sprintf("SYM-%d", i)
	}
	for _, tc := range []struct {
		req   *matchingv1.StreamMarketDataRequest
		field string
	}{
		{&matchingv1.StreamMarketDataRequest{Symbols: many}, "symbols"},
		{&matchingv1.StreamMarketDataRequest{Symbols: []string{"BTC-USD"}, Depth: 1001}, "depth"},
		{&matchingv1.StreamMarketDataRequest{}, "symbols"},
	} {
		md, err := mc.StreamMarketData(t.Context(), tc.req)
		if err == nil {
			_, err = md.Recv()
		}
		if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), tc.field) {
			t.Errorf("%d symbols, depth %d: %v %q, want InvalidArgument naming %s", len(tc.req.Symbols), tc.req.Depth, st.Code(), st.Message(), tc.field)
		}
	}
}
