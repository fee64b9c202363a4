package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/structpb"

	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
	"github.com/bourse-dev/bourse/pkg/loadgen"
)

func newBenchCmd(g *globals) *cobra.Command {
	cmd := group(&cobra.Command{Use: "bench", Short: "Load generators that stop by themselves"})
	load := loadgen.Orders{}
	var duration time.Duration
	orders := &cobra.Command{
		Use:   "orders",
		Short: "Stream non-crossing limit orders (and cancels) at matching; a progress bar, then rate and a latency histogram",
		Long: `Places buys for --buyer and sells for --seller (1000 above, so nothing trades) over StreamOrders
with many orders in flight, and cancels every other one so the book stays small. It needs a key that may
act for both accounts (an admin key), and stops after --orders commands or --duration.`,
		Example: `  bourse --api-key dev-admin bench orders --symbol BTC-USD --orders 50000
  bourse --api-key dev-admin bench orders --streams 8 --window 2000 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for flag, v := range map[string]int{"--orders": load.Orders, "--streams": load.Streams, "--window": load.Window, "--batch": load.Batch} {
				if v <= 0 {
					return usageError("%s %d: must be at least 1", flag, v)
				}
			}
			cc, err := g.conns.dial("matching")
			if err != nil {
				return err
			}
			bar := newProgressBar(g.errOut)
			start := time.Now()
			detail := func(done, failed int64) string {
				return fmt.Sprintf("%d/%d  %.0f/s  %d refused", done+failed, load.Orders, float64(done)/max(time.Since(start).Seconds(), 1e-9), failed)
			}
			var firstRefusal string
			load.OnRefused = func(msg string) {
				if firstRefusal == "" {
					firstRefusal = msg
				}
			}
			load.Progress = func(done, failed int64) {
				bar.update("orders", float64(done+failed)/float64(load.Orders), detail(done, failed))
			}
			ctx, cancel := cmd.Context(), func() {}
			if duration > 0 {
				ctx, cancel = context.WithTimeout(ctx, duration)
			}
			defer cancel()
			mc := matchingv1.NewMatchingServiceClient(cc)
			res, runErr := load.Run(ctx, mc)
			bar.done("orders", float64(res.Done+res.Failed)/float64(load.Orders), detail(res.Done, res.Failed))
			load.Cleanup(cmd.Context(), mc)
			summary, err := structpb.NewStruct(map[string]any{
				"commands": res.Done, "refused": res.Failed, "elapsed_s": res.Elapsed.Seconds(), "rate_per_s": res.Rate(),
				"p50_us": res.Percentile(0.5).Microseconds(), "p99_us": res.Percentile(0.99).Microseconds(),
				"p999_us": res.Percentile(0.999).Microseconds(), "max_us": res.Percentile(1).Microseconds(),
				"streams": load.Streams, "window": load.Window, "batch": load.Batch,
			})
			if err != nil {
				return err
			}
			if err := g.print(summary, func(t *tabwriter.Writer) {
				row(t, "COMMANDS", "REFUSED", "RATE/S", "P50", "P99", "P99.9", "MAX")
				row(t, res.Done, res.Failed, fmt.Sprintf("%.0f", res.Rate()), res.Percentile(0.5), res.Percentile(0.99), res.Percentile(0.999), res.Percentile(1))
				t.Flush()
				fmt.Fprintln(g.out, "\nlatency")
				for _, l := range res.Histogram(40) {
					fmt.Fprintln(g.out, l)
				}
			}); err != nil {
				return err
			}
			if runErr != nil && ctx.Err() == nil {
				return explain(runErr, "matching", g.conns.where("matching"))
			}
			if res.Failed > 0 {
				return &exitError{ExitFailed, fmt.Sprintf("%d commands were refused; the first: %s", res.Failed, firstRefusal)}
			}
			return nil
		},
	}
	f := orders.Flags()
	f.StringVar(&load.Symbol, "symbol", "BTC-USD", "symbol")
	f.StringVar(&load.Buyer, "buyer", "alice", "account of the buys")
	f.StringVar(&load.Seller, "seller", "bob", "account of the sells")
	f.IntVar(&load.Streams, "streams", 4, "concurrent StreamOrders streams")
	f.IntVar(&load.Orders, "orders", 20_000, "commands in total")
	f.IntVar(&load.Window, "window", 1000, "unanswered commands per stream")
	f.IntVar(&load.Batch, "batch", 100, "commands per stream message")
	f.BoolVar(&load.Cancels, "cancel", true, "every other command cancels an acknowledged order")
	f.Int64Var(&load.Bid, "bid", 1000, "whole price of the buys (sells 1000 above)")
	f.StringVar(&load.Qty, "qty", "0.001", "quantity of each order")
	f.DurationVar(&duration, "duration", 2*time.Minute, "stop after this long in any case")
	cmd.AddCommand(orders)
	return cmd
}
