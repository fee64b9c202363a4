// Command matching-load drives StreamOrders with many orders in flight and prints throughput and
// latency. It stops by itself: after --orders orders, or at --timeout.
//
//	matching-load --addr 127.0.0.1:7003 --api-key dev-admin --streams 4 --orders 200000
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/bourse-dev/bourse/pkg/client"
	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
	"github.com/bourse-dev/bourse/pkg/loadgen"
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

	load := loadgen.Orders{Symbol: *symbol, Buyer: *buyer, Seller: *seller, Streams: *streams, Orders: *orders,
		Window: *window, Batch: *batch, Cancels: *cancels, Bid: *bid, Qty: *qty,
		OnRefused: func(msg string) { fmt.Fprintln(os.Stderr, "order refused:", msg) }}
	res, err := load.Run(ctx, mc)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	fmt.Printf("%-34s commands=%d errors=%d rate=%.0f/s p50=%v p99=%v p99.9=%v streams=%d window=%d batch=%d\n",
		*label, res.Done, res.Failed, res.Rate(), res.Percentile(0.5), res.Percentile(0.99), res.Percentile(0.999), *streams, *window, *batch)
	// Leave the book empty for the next run.
	load.Cleanup(context.Background(), mc)
	if res.Failed > 0 || err != nil {
		os.Exit(1)
	}
}
