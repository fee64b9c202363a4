// Package loadgen drives matching's StreamOrders with many orders in flight and measures what comes
// back. The matching-load tool (make bench) and `bourse bench orders` are both thin front ends to it.
package loadgen

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
)

// Orders configures a run. Buys rest at Bid minus up to 99 and sells 1000 above, so nothing crosses
// and the run measures the order path, not matching.
type Orders struct {
	Symbol         string
	Buyer, Seller  string
	Streams        int  // concurrent StreamOrders streams
	Orders         int  // commands in total
	Window         int  // unanswered commands per stream
	Batch          int  // commands per StreamOrders message
	Cancels        bool // every other command cancels an acknowledged order, so the book stays small
	Bid            int64
	Qty            string
	RunID          string                   // makes client order ids unique per run (default: the time)
	Progress       func(done, failed int64) // called about every 100 ms while the run lasts, and at the end
	OnRefused      func(message string)     // an order the server refused (default: ignored)
	ProgressPeriod time.Duration            // default 100 ms
}

// Result is what a run measured.
type Result struct {
	Done, Failed int64
	Elapsed      time.Duration
	Latencies    []time.Duration // of every answered command, sorted
}

// Rate is answered commands per second.
func (r Result) Rate() float64 { return float64(r.Done) / max(r.Elapsed.Seconds(), 1e-9) }

// Percentile of the latencies (p in [0, 1]).
func (r Result) Percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	return r.Latencies[min(len(r.Latencies)-1, int(float64(len(r.Latencies))*p))]
}

// Run sends the orders and returns when every one is answered, a stream fails, or ctx ends.
func (o Orders) Run(ctx context.Context, mc matchingv1.MatchingServiceClient) (Result, error) {
	if o.Streams <= 0 || o.Orders <= 0 || o.Window <= 0 || o.Batch <= 0 {
		return Result{}, fmt.Errorf("loadgen: streams, orders, window and batch must be positive")
	}
	if o.RunID == "" {
		o.RunID = fmt.Sprint(time.Now().UnixNano())
	}
	var done, failed atomic.Int64
	lat := make([][]time.Duration, o.Streams)
	errs := make([]error, o.Streams)

	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() { // owned here: stops when the streams are done
		defer close(progressDone)
		if o.Progress == nil {
			return
		}
		period := o.ProgressPeriod
		if period <= 0 {
			period = 100 * time.Millisecond
		}
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				o.Progress(done.Load(), failed.Load())
			case <-stopProgress:
				o.Progress(done.Load(), failed.Load())
				return
			}
		}
	}()

	var wg sync.WaitGroup
	start := time.Now()
	for s := range o.Streams {
		// The remainder goes to the first streams: a run sends exactly Orders commands (progress is
		// reported against Orders, and fewer orders than streams must still send them).
		n := o.Orders / o.Streams
		if s < o.Orders%o.Streams {
			n++
		}
		if n == 0 {
			continue
		}
		wg.Go(func() { lat[s], errs[s] = o.drive(ctx, mc, s, n, &done, &failed) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stopProgress)
	<-progressDone
	all := slices.Concat(lat...)
	slices.Sort(all)
	res := Result{Done: done.Load(), Failed: failed.Load(), Elapsed: elapsed, Latencies: all}
	for _, err := range errs {
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// Cleanup cancels what the run left resting, so the next run starts from an empty book.
func (o Orders) Cleanup(ctx context.Context, mc matchingv1.MatchingServiceClient) {
	for _, acct := range []string{o.Buyer, o.Seller} {
		_, _ = mc.CancelAllOrders(ctx, &matchingv1.CancelAllOrdersRequest{AccountId: acct, Symbol: o.Symbol})
	}
}

// drive sends n orders on one stream, Batch per message, with at most Window unanswered, and
// returns their latencies.
func (o Orders) drive(ctx context.Context, mc matchingv1.MatchingServiceClient, s, n int, done, failed *atomic.Int64) ([]time.Duration, error) {
	stream, err := mc.StreamOrders(ctx)
	if err != nil {
		failed.Add(int64(n))
		return nil, err
	}
	sent := make([]time.Time, n+1)
	var answered atomic.Int64
	credits := make(chan struct{}, o.Window)
	lat := make([]time.Duration, 0, n)
	// Acknowledged resting orders, for the cancels.
	type resting struct{ account, cid string }
	open := make(chan resting, o.Window+n)
	recvDone := make(chan struct{})
	var recvErr error
	go func() { // owned by drive: ends when every command is answered or the stream fails
		defer close(recvDone)
		for answered.Load() < int64(n) {
			msg, err := stream.Recv()
			if err != nil {
				if err != io.EOF {
					recvErr = err
				}
				return
			}
			for _, u := range msg.GetUpdates() {
				if u.GetRequestId() == 0 {
					continue // a fill, not an answer
				}
				if u.GetErrorCode() != 0 {
					failed.Add(1)
					if o.OnRefused != nil {
						o.OnRefused(u.GetErrorMessage())
					}
				} else {
					done.Add(1)
					if ord := u.GetOrder(); ord.GetStatus() == matchingv1.OrderStatus_ORDER_STATUS_NEW {
						open <- resting{ord.GetAccountId(), ord.GetClientOrderId()}
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
		if len(req.Commands) < o.Batch && i < n && len(credits) < cap(credits) {
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
			return lat, recvErr
		}
		sent[i] = time.Now()
		if o.Cancels && i%2 == 0 {
			select {
			case r := <-open:
				req.Commands = append(req.Commands, &matchingv1.OrderCommand{RequestId: uint64(i), Command: &matchingv1.OrderCommand_Cancel{
					Cancel: &matchingv1.CancelOrderRequest{AccountId: r.account, Symbol: o.Symbol, ClientOrderId: r.cid}}})
				if !flush(i) {
					i = n // the stream is gone; recvDone ends the wait
				}
				continue
			default:
			}
		}
		side, acct, price := matchingv1.Side_SIDE_BUY, o.Buyer, o.Bid-int64(i%100)
		if i%4 >= 2 {
			side, acct, price = matchingv1.Side_SIDE_SELL, o.Seller, o.Bid+1000+int64(i%100)
		}
		req.Commands = append(req.Commands, &matchingv1.OrderCommand{RequestId: uint64(i), Command: &matchingv1.OrderCommand_Submit{Submit: &matchingv1.SubmitOrderRequest{
			AccountId: acct, Symbol: o.Symbol, ClientOrderId: fmt.Sprintf("load-%s-%d-%d", o.RunID, s, i), Side: side,
			Type: matchingv1.OrderType_ORDER_TYPE_LIMIT, Price: fmt.Sprint(price), Quantity: o.Qty}}})
		if !flush(i) {
			break
		}
	}
	<-recvDone
	_ = stream.CloseSend()
	return lat, recvErr
}

// Histogram buckets the latencies by powers of two from 16 µs, for a terminal: one line per
// non-empty bucket with its count and a bar scaled to width.
func (r Result) Histogram(width int) []string {
	if len(r.Latencies) == 0 {
		return nil
	}
	// At least one bucket: latencies all under 8 µs would otherwise leave none to count into.
	bounds := []time.Duration{16 * time.Microsecond}
	for b := 32 * time.Microsecond; b < r.Latencies[len(r.Latencies)-1]*2; b *= 2 {
		bounds = append(bounds, b)
	}
	counts := make([]int, len(bounds))
	j := 0
	for _, l := range r.Latencies {
		for j < len(bounds)-1 && l >= bounds[j] {
			j++
		}
		counts[j]++
	}
	peak := slices.Max(counts)
	var lines []string
	for i, c := range counts {
		if c == 0 {
			continue
		}
		bar := max(1, c*width/peak)
		lo := time.Duration(0)
		if i > 0 {
			lo = bounds[i-1]
		}
		lines = append(lines, fmt.Sprintf("%9v – %-9v %8d %s", lo, bounds[i], c, strings.Repeat("█", bar)))
	}
	return lines
}
