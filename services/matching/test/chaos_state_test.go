package matching_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
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
	// The admin views of the settlement protocol, nil from a build that does not have them yet.
	audit      *riskv1.AuditResponse
	settlement *matchingv1.GetSettlementStatusResponse
}

// chaosReader reads chaosState. Orders matching reported closed are final: they are not read again
// while a check polls for settlement, and each check reads them all again (after a crash they must
// still be there, unchanged) until there are more than recheckAll, when it reads a random sample of
// recheckSample, so that a run of hundreds of crashes does not spend its time re-reading old orders.
type chaosReader struct {
	cluster  *chaosCluster
	accounts []string
	final    map[string]*matchingv1.Order
	rng      *rand.Rand
}

const (
	recheckAll    = 20_000
	recheckSample = 2_000
)

// recheck starts a check: it forgets the final orders that this check must read again.
func (r *chaosReader) recheck() {
	if len(r.final) <= recheckAll {
		clear(r.final)
		return
	}
	keys := slices.Sorted(maps.Keys(r.final))
	for range recheckSample {
		delete(r.final, keys[r.rng.IntN(len(keys))])
	}
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
	audit, err := withRetry(ctx, func(ctx context.Context) (*riskv1.AuditResponse, error) {
		return cl.risk.Audit(ctx, &riskv1.AuditRequest{})
	})
	switch {
	case err == nil:
		st.audit = audit
	case status.Code(err) != codes.Unimplemented:
		return nil, fmt.Errorf("risk Audit: %w", err)
	}
	settlement, err := withRetry(ctx, func(ctx context.Context) (*matchingv1.GetSettlementStatusResponse, error) {
		return cl.matching.GetSettlementStatus(ctx, &matchingv1.GetSettlementStatusRequest{})
	})
	switch {
	case err == nil:
		st.settlement = settlement
	case status.Code(err) != codes.Unimplemented:
		return nil, fmt.Errorf("matching GetSettlementStatus: %w", err)
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

// settling reports whether matching says settlement or a re-sync with risk is still under way.
func (st *chaosState) settling() bool {
	for _, sh := range st.settlement.GetShards() {
		if !sh.GetHalted() && (sh.GetQueued() > 0 || sh.GetSyncing()) {
			return true
		}
	}
	return false
}
