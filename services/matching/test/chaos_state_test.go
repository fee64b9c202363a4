package matching_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
)

// chaosState is what the two services report through their own read APIs at one moment with the
// load stopped: risk's accounts (balances, reservations, positions), matching's resting orders
// (L3) and matching's view of every order the load attempted.
type chaosState struct {
	accounts map[string]*riskv1.Account
	books    map[string]*matchingv1.GetBookResponse
	// orders holds matching's answer for each attempted order, by orderKey; absent means NotFound.
	orders map[string]*matchingv1.Order
}

// chaosReader reads chaosState. Orders matching reported closed are final and are not read again
// within one check (a check polls until settlement is done); every check reads them all again.
type chaosReader struct {
	cluster  *chaosCluster
	accounts []string
	final    map[string]*matchingv1.Order
}

const readParallelism = 16

func (r *chaosReader) read(ctx context.Context, orders []chaosOrder) (*chaosState, error) {
	cl := r.cluster.current()
	st := &chaosState{accounts: map[string]*riskv1.Account{}, books: map[string]*matchingv1.GetBookResponse{},
		orders: map[string]*matchingv1.Order{}}
	for _, acct := range append(append([]string{}, r.accounts...), feeAccount) {
		resp, err := withRetry(ctx, func(ctx context.Context) (*riskv1.GetAccountResponse, error) {
			return cl.risk.GetAccount(ctx, &riskv1.GetAccountRequest{AccountId: acct})
		})
		if err != nil {
			return nil, fmt.Errorf("risk GetAccount %s: %w", acct, err)
		}
		st.accounts[acct] = resp.GetAccount()
	}
	for _, sym := range chaosSymbols {
		resp, err := withRetry(ctx, func(ctx context.Context) (*matchingv1.GetBookResponse, error) {
			return cl.matching.GetBook(ctx, &matchingv1.GetBookRequest{Symbol: sym.name, Depth: 1000, IncludeOrders: true})
		})
		if err != nil {
			return nil, fmt.Errorf("matching GetBook %s: %w", sym.name, err)
		}
		st.books[sym.name] = resp
	}

	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		work     = make(chan chaosOrder)
	)
	for range readParallelism {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range work {
				key := orderKey(o.account, o.symbol, o.cid)
				resp, err := withRetry(ctx, func(ctx context.Context) (*matchingv1.GetOrderResponse, error) {
					return cl.matching.GetOrder(ctx, &matchingv1.GetOrderRequest{AccountId: o.account, Symbol: o.symbol, ClientOrderId: o.cid})
				})
				mu.Lock()
				switch {
				case err == nil:
					st.orders[key] = resp.GetOrder()
				case status.Code(err) == codes.NotFound:
				case firstErr == nil:
					firstErr = fmt.Errorf("matching GetOrder %s: %w", key, err)
				}
				mu.Unlock()
			}
		}()
	}
	for _, o := range orders {
		key := orderKey(o.account, o.symbol, o.cid)
		if f, ok := r.final[key]; ok {
			mu.Lock()
			st.orders[key] = f
			mu.Unlock()
			continue
		}
		work <- o
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	for key, o := range st.orders {
		switch o.GetStatus() {
		case matchingv1.OrderStatus_ORDER_STATUS_FILLED, matchingv1.OrderStatus_ORDER_STATUS_CANCELLED:
			r.final[key] = o
		}
	}
	return st, nil
}

// withRetry retries a read while the service is briefly unavailable.
func withRetry[T any](ctx context.Context, call func(context.Context) (T, error)) (T, error) {
	for attempt := 0; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		v, err := call(cctx)
		cancel()
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return v, err
		}
		time.Sleep(backoff(attempt))
	}
}
