package grpcapi

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/bourse-dev/bourse/pkg/auth"
	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
	"github.com/bourse-dev/bourse/pkg/server"
	"github.com/bourse-dev/bourse/services/matching/internal/exchange"
)

// acceptingRisk stands in for the risk service: it accepts every order with a fresh reservation
// and takes every settlement, which is all these tests rely on (they test delivery, not risk).
type acceptingRisk struct{ next atomic.Uint64 }

func (r *acceptingRisk) Symbol(context.Context, string) (exchange.RiskSymbol, error) {
	return exchange.RiskSymbol{PriceScale: 2, QtyScale: 3, QuoteScale: 8, TakerFeeRate: "0.001"}, nil
}

func (r *acceptingRisk) Check(_ context.Context, b exchange.CheckBatch) (exchange.CheckAnswer, error) {
	out := make([]exchange.RiskDecision, len(b.Checks))
	for i := range out {
		out[i] = exchange.RiskDecision{Accepted: true, ReservationID: r.next.Add(1)}
	}
	return exchange.CheckAnswer{Decisions: out}, nil
}

func (r *acceptingRisk) Settle(_ context.Context, b exchange.SettleBatch) (exchange.SettleAnswer, error) {
	return exchange.SettleAnswer{Watermark: b.Through}, nil
}

func (r *acceptingRisk) Sync(context.Context, exchange.SyncBatch) (exchange.SyncAnswer, error) {
	return exchange.SyncAnswer{}, nil
}

func (r *acceptingRisk) Release(context.Context, []uint64) error { return nil }

// testServer is a real exchange behind a real gRPC server on loopback. Callers are admins (the
// interceptor stands in for API keys) and handler errors become statuses as in pkg/server.
type testServer struct {
	x    *exchange.Exchange
	srv  *Server
	addr string
	// ended receives the full method name each time a stream handler returns.
	ended chan string
}

func startServer(t testing.TB, configure func(*Server)) *testServer {
	t.Helper()
	x, err := exchange.Open(context.Background(), exchange.Config{DataDir: t.TempDir(), Shards: 1, NoSync: true,
		Logger: slog.New(slog.DiscardHandler)}, &acceptingRisk{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x.AddSymbol(context.Background(), exchange.SpecInput{Symbol: "BTC-USD", TickSize: "0.01", LotSize: "0.001"}); err != nil {
		t.Fatal(err)
	}
	ts := &testServer{x: x, srv: New(x), ended: make(chan string, 64)}
	if configure != nil {
		configure(ts.srv)
	}
	admin := auth.Admin("test")
	gs := grpc.NewServer(
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			resp, err := h(auth.WithIdentity(ctx, admin), req)
			return resp, server.ToStatus(err)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			err := h(srv, &identityStream{ServerStream: ss, ctx: auth.WithIdentity(ss.Context(), admin)})
			select {
			case ts.ended <- info.FullMethod:
			default:
			}
			return server.ToStatus(err)
		}))
	matchingv1.RegisterMatchingServiceServer(gs, ts.srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = lis.Addr().String()
	served := make(chan struct{})
	go func() { defer close(served); _ = gs.Serve(lis) }()
	t.Cleanup(func() {
		gs.Stop()
		<-served
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := x.Close(ctx); err != nil {
			t.Errorf("close exchange: %v", err)
		}
	})
	return ts
}

type identityStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *identityStream) Context() context.Context { return s.ctx }

// dial opens a connection of its own. Fixed 64 KiB flow-control windows (no BDP growth) make a
// client that stops reading stall the server's sends after a known, small amount of data.
func (ts *testServer) dial(t testing.TB) matchingv1.MatchingServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(ts.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return matchingv1.NewMatchingServiceClient(conn)
}

// waitEnded waits until a handler of method has returned.
func (ts *testServer) waitEnded(t testing.TB, method string, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case m := <-ts.ended:
			if m == method {
				return
			}
		case <-deadline:
			t.Fatalf("%s handler did not return within %v", method, within)
		}
	}
}

func limitOrder(account, cid string, side matchingv1.Side, price string) *matchingv1.SubmitOrderRequest {
	return &matchingv1.SubmitOrderRequest{AccountId: account, Symbol: "BTC-USD", ClientOrderId: cid, Side: side,
		Type: matchingv1.OrderType_ORDER_TYPE_LIMIT, Price: price, Quantity: "0.001"}
}

// restingOrder is the i-th order of a non-crossing pattern: buys at or below 99.99, sells at or
// above 200.00, on 100 price levels per side.
func restingOrder(account, prefix string, i int) *matchingv1.SubmitOrderRequest {
	if i%2 == 0 {
		return limitOrder(account, fmt.Sprintf("%s-%d", prefix, i), matchingv1.Side_SIDE_BUY, fmt.Sprintf("99.%02d", 99-i/2%100))
	}
	return limitOrder(account, fmt.Sprintf("%s-%d", prefix, i), matchingv1.Side_SIDE_SELL, fmt.Sprintf("200.%02d", i/2%100))
}

// orderWorker places resting orders for account one at a time over unary SubmitOrder until stop
// is closed, and reports the first order that failed or took longer than limit.
type orderWorker struct {
	placed atomic.Int64
	mu     sync.Mutex
	err    error
	done   chan struct{}
}

func placeOrders(mc matchingv1.MatchingServiceClient, account string, limit time.Duration, stop <-chan struct{}) *orderWorker {
	w := &orderWorker{done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), limit)
			start := time.Now()
			resp, err := mc.SubmitOrder(ctx, restingOrder(account, "w", i))
			cancel()
			if err == nil && resp.GetOrder().GetStatus() != matchingv1.OrderStatus_ORDER_STATUS_NEW {
				err = fmt.Errorf("status %v", resp.GetOrder().GetStatus())
			}
			if err != nil {
				w.mu.Lock()
				w.err = fmt.Errorf("order %d of %s after %v: %w", i, account, time.Since(start).Round(time.Millisecond), err)
				w.mu.Unlock()
				return
			}
			w.placed.Add(1)
		}
	}()
	return w
}

// streamOrders is placeOrders over one StreamOrders stream, 100 orders a round: each round is sent
// in one message and must be answered within limit before the next. It makes market data faster
// than unary calls do.
func streamOrders(mc matchingv1.MatchingServiceClient, account string, limit time.Duration, stop <-chan struct{}) *orderWorker {
	w := &orderWorker{done: make(chan struct{})}
	fail := func(err error) {
		w.mu.Lock()
		w.err = err
		w.mu.Unlock()
	}
	go func() {
		defer close(w.done)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		stream, err := mc.StreamOrders(ctx)
		if err != nil {
			fail(err)
			return
		}
		for i := 0; ; i += 100 {
			select {
			case <-stop:
				return
			default:
			}
			msg := &matchingv1.StreamOrdersRequest{}
			for j := i; j < i+100; j++ {
				msg.Commands = append(msg.Commands, &matchingv1.OrderCommand{RequestId: uint64(j + 1),
					Command: &matchingv1.OrderCommand_Submit{Submit: restingOrder(account, "w", j)}})
			}
			start := time.Now()
			timer := time.AfterFunc(limit, cancel)
			if err := stream.Send(msg); err != nil {
				fail(fmt.Errorf("round at order %d of %s: %w", i, account, err))
				return
			}
			for got := 0; got < 100; {
				resp, err := stream.Recv()
				if err != nil {
					fail(fmt.Errorf("round at order %d of %s after %v: %w", i, account, time.Since(start).Round(time.Millisecond), err))
					return
				}
				for _, u := range resp.GetUpdates() {
					if u.GetRequestId() == 0 {
						continue
					}
					if u.GetErrorCode() != 0 || u.GetOrder().GetStatus() != matchingv1.OrderStatus_ORDER_STATUS_NEW {
						fail(fmt.Errorf("order %d of %s: %v %s", u.GetRequestId()-1, account, u.GetOrder().GetStatus(), u.GetErrorMessage()))
						return
					}
					got++
				}
			}
			timer.Stop()
			w.placed.Add(100)
		}
	}()
	return w
}

// finish stops the worker and returns its first failure.
func (w *orderWorker) finish(stop chan struct{}) error {
	close(stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// serverGoroutines lists the goroutines running a method of Server (handlers and what they start).
func serverGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var found []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "grpcapi.(*Server)") || strings.Contains(g, "grpcapi.(*ordersStream)") {
			found = append(found, g)
		}
	}
	return found
}

// waitNoServerGoroutines fails unless every goroutine of a Server method is gone within a while.
func waitNoServerGoroutines(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := serverGoroutines()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines of the stream handlers leaked; first:\n%s", len(left), left[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
