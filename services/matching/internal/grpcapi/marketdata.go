package grpcapi

import (
	"github.com/bourse-dev/bourse/pkg/errs"
	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
	"github.com/bourse-dev/bourse/services/matching/internal/exchange"
)

// maxSubscribeSymbols bounds the distinct symbols of one StreamMarketData request: their snapshots
// are built on the shard goroutines at once and must all fit the subscriber's buffer.
const maxSubscribeSymbols = 256

// StreamMarketData sends a snapshot of each symbol, then every update. A subscriber that falls
// MarketDataBuffer updates behind is cut off with ResourceExhausted, even while a send to it is
// stuck: the handler does not send itself, it waits for the end.
func (s *Server) StreamMarketData(req *matchingv1.StreamMarketDataRequest, stream matchingv1.MatchingService_StreamMarketDataServer) error {
	depth, err := depthOf(req.GetDepth())
	if err != nil {
		return err
	}
	symbols, err := subscribeSymbols(req.GetSymbols())
	if err != nil {
		return err
	}
	sub, err := s.x.Subscribe(symbols, depth, s.MarketDataBuffer)
	if err != nil {
		return err
	}
	// Closing the subscription stops the sender unless it is in Send, which returning unblocks.
	defer sub.Close()
	sent := make(chan error, 1)
	go func() { sent <- sendMarketData(stream, sub) }()
	select {
	case err := <-sent:
		return err
	case <-sub.Done():
		return sub.Err()
	case <-s.Draining:
		return errs.New(errs.KindUnavailable, "matching is shutting down; resubscribe")
	case <-stream.Context().Done():
		return nil
	}
}

func sendMarketData(stream matchingv1.MatchingService_StreamMarketDataServer, sub *exchange.Subscription) error {
	for {
		select {
		case md := <-sub.C:
			if err := stream.Send(marketDataToProto(&md)); err != nil {
				return err
			}
		case <-sub.Done():
			return nil
		}
	}
}

// subscribeSymbols drops repeated names (keeping the first's place) and caps how many remain.
func subscribeSymbols(names []string) ([]string, error) {
	seen := make(map[string]bool, min(len(names), maxSubscribeSymbols+1))
	var out []string
	for _, n := range names {
		if seen[n] {
			continue
		}
		if len(out) == maxSubscribeSymbols {
			return nil, errs.Invalid("symbols", "at most %d distinct symbols per request", maxSubscribeSymbols)
		}
		seen[n] = true
		out = append(out, n)
	}
	return out, nil
}
