// Command matching-load drives StreamOrders with many orders in flight and prints throughput and
// latency. It stops by itself: after --orders orders, or at --timeout.
//
//	matching-load --addr 127.0.0.1:7003 --api-key dev-admin --streams 4 --orders 200000
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bourse-dev/bourse/pkg/client"
	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
	"github.com/bourse-dev/bourse/pkg/tlsconfig"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:7003", "matching gRPC address")
	key := flag.String("api-key", "", "admin API key (orders are placed for --buyer and --seller)")
	symbol := flag.String("symbol", "BTC-USD", "symbol")
	buyer := flag.String("buyer", "alice", "account of the buy orders")
	seller := flag.String("seller", "bob", "account of the sell orders")
	streams := flag.Int("streams", 4, "concurrent StreamOrders streams")
	orders := flag.Int("orders", 100_000, "orders in total")
	window := flag.Int("window", 4000, "orders in flight per stream")
	batch := flag.Int("batch", 100, "commands per StreamOrders message")
	cancels := flag.Bool("cancel", true, "every other command cancels an acknowledged order, so the book stays small as on a live exchange")
	bid := flag.Int64("bid", 1000, "whole price of buy orders (sells are placed 1000 above: nothing crosses)")
	qty := flag.String("qty", "0.001", "quantity of each order")
	label := flag.String("label", "StreamOrders", "label of the result line")
	timeout := flag.Duration("timeout", 2*time.Minute, "stop after this long in any case")
	var tlsFiles tlsconfig.Files
	flag.StringVar(&tlsFiles.Cert, "tls-cert", "", "mutual TLS: client certificate (e.g. .run/tls/client.crt); with --tls-key and --tls-ca")
	flag.StringVar(&tlsFiles.Key, "tls-key", "", "mutual TLS: its key")
	flag.StringVar(&tlsFiles.CA, "tls-ca", "", "mutual TLS: the CA matching's certificate must chain to")
	flag.Parse()

	opts := client.Options{APIKey: *key, ServerName: "matching"}
	if tlsFiles.Enabled() {
		src, err := tlsconfig.Load(tlsFiles, nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		opts.TLS = src
	}
	conn, err := client.Dial(*addr, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer conn.Close()
	mc := matchingv1.NewMatchingServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	run := fmt.Sprintf("%d", time.Now().UnixNano())
	per := *orders / *streams
	var done, failed atomic.Int64
	lat := make([][]time.Duration, *streams)
	var wg sync.WaitGroup
	start := time.Now()
	for s := range *streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat[s] = drive(ctx, mc, s, per, *window, *batch, *cancels, run, *symbol, *buyer, *seller, *bid, *qty, &done, &failed)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(float64(len(all))*p))]
	}
	fmt.Printf("%-34s commands=%d errors=%d rate=%.0f/s p50=%v p99=%v p99.9=%v streams=%d window=%d batch=%d\n",
		*label, done.Load(), failed.Load(), float64(done.Load())/elapsed.Seconds(), pct(0.5), pct(0.99), pct(0.999), *streams, *window, *batch)
	// Leave the book empty for the next run.
	for _, acct := range []string{*buyer, *seller} {
		_, _ = mc.CancelAllOrders(context.Background(), &matchingv1.CancelAllOrdersRequest{AccountId: acct, Symbol: *symbol})
	}
	if failed.Load() > 0 {
		os.Exit(1)
	}
}

// drive sends n orders on one stream, batch per message, with at most window unanswered, and
// returns their latencies.
func drive(ctx context.Context, mc matchingv1.MatchingServiceClient, s, n, window, batch int, cancels bool, run, symbol, buyer, seller string,
	bid int64, qty string, done, failed *atomic.Int64) []time.Duration {
	stream, err := mc.StreamOrders(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		failed.Add(int64(n))
		return nil
	}
	sent := make([]time.Time, n+1)
	var answered atomic.Int64
	credits := make(chan struct{}, window)
	lat := make([]time.Duration, 0, n)
	// Acknowledged resting orders, for the cancels.
	type resting struct{ account, cid string }
	open := make(chan resting, window+n)
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		for answered.Load() < int64(n) {
			msg, err := stream.Recv()
			if err != nil {
				if err != io.EOF {
					fmt.Fprintln(os.Stderr, "recv:", err)
				}
				return
			}
			for _, u := range msg.GetUpdates() {
				if u.GetRequestId() == 0 {
					continue // a fill, not an answer
				}
				if u.GetErrorCode() != 0 {
					failed.Add(1)
					fmt.Fprintln(os.Stderr, "order refused:", u.GetErrorMessage())
				} else {
					done.Add(1)
					if o := u.GetOrder(); o.GetStatus() == matchingv1.OrderStatus_ORDER_STATUS_NEW {
						open <- resting{o.GetAccountId(), o.GetClientOrderId()}
					}
				}
				answered.Add(1)
				lat = append(lat, time.Since(sent[u.GetRequestId()]))
				<-credits
			}
		}
	}()
	req := &matchingv1.StreamOrdersRequest{}
	// flush sends the pending commands when the batch is full, the last one is in, or the window is.
	flush := func(i int) bool {
		if len(req.Commands) < batch && i < n && len(credits) < cap(credits) {
			return true
		}
		err := stream.Send(req)
		req.Commands = req.Commands[:0]
		return err == nil
	}
	for i := 1; i <= n; i++ {
		select {
		case credits <- struct{}{}:
		case <-recvDone:
			return lat
		}
		sent[i] = time.Now()
		if cancels && i%2 == 0 {
			select {
			case o := <-open:
				req.Commands = append(req.Commands, &matchingv1.OrderCommand{RequestId: uint64(i), Command: &matchingv1.OrderCommand_Cancel{
					Cancel: &matchingv1.CancelOrderRequest{AccountId: o.account, Symbol: symbol, ClientOrderId: o.cid}}})
				if !flush(i) {
					i = n // the stream is gone; recvDone ends the wait
				}
				continue
			default:
			}
		}
		side, acct, price := matchingv1.Side_SIDE_BUY, buyer, bid-int64(i%100)
		if i%4 >= 2 {
			side, acct, price = matchingv1.Side_SIDE_SELL, seller, bid+1000+int64(i%100)
		}
		req.Commands = append(req.Commands, &matchingv1.OrderCommand{RequestId: uint64(i), Command: &matchingv1.OrderCommand_Submit{Submit: &matchingv1.SubmitOrderRequest{
			AccountId: acct, Symbol: symbol, ClientOrderId: fmt.Sprintf("load-%s-%d-%d", run, s, i), Side: side,
			Type: matchingv1.OrderType_ORDER_TYPE_LIMIT, Price: fmt.Sprintf("%d", price), Quantity: qty}}})
		if !flush(i) {
			break
		}
	}
	<-recvDone
	_ = stream.CloseSend()
	return lat
}
