package payment_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	acquirerv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/acquirer/v1"
	paymentv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/payment/v1"
	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
)

// chaosState is everything the checks look at, read through the services' own APIs only: payment's
// ListPayments, ListEvents, GetRefund, GetPayout, GetLedgerBalance and ListLedgerEntries, the
// acquirer's ListOperations, risk's GetAccount.
type chaosState struct {
	payments map[string]*paymentv1.Payment
	refunds  map[string]*paymentv1.Refund
	payouts  map[string]*paymentv1.Payout
	events   map[string][]string // object id → its event types in sequence order
	ops      map[acquirerv1.OperationKind][]*acquirerv1.Operation
	risk     map[string]int64 // account → USD total in cents
	balance  *paymentv1.GetLedgerBalanceResponse
	txs      []*paymentv1.LedgerTransaction
}

func readChaosState(ctx context.Context, c *chaosStack) (*chaosState, error) {
	p := c.pay()
	s := &chaosState{payments: map[string]*paymentv1.Payment{}, refunds: map[string]*paymentv1.Refund{},
		payouts: map[string]*paymentv1.Payout{}, events: map[string][]string{}, ops: map[acquirerv1.OperationKind][]*acquirerv1.Operation{},
		risk: map[string]int64{}}
	for _, account := range chaosAccounts {
		tok := ""
		for {
			r, err := p.admin.ListPayments(ctx, &paymentv1.ListPaymentsRequest{AccountId: account, PageSize: 100, PageToken: tok})
			if err != nil {
				return nil, fmt.Errorf("ListPayments: %w", err)
			}
			for _, x := range r.GetPayments() {
				s.payments[x.GetPaymentId()] = x
			}
			if tok = r.GetNextPageToken(); tok == "" {
				break
			}
		}
		var after int64
		for {
			r, err := p.admin.ListEvents(ctx, &paymentv1.ListEventsRequest{AccountId: account, AfterSequence: after, PageSize: 500})
			if err != nil {
				return nil, fmt.Errorf("ListEvents: %w", err)
			}
			for _, e := range r.GetEvents() {
				s.events[e.GetObjectId()] = append(s.events[e.GetObjectId()], e.GetType())
				after = e.GetSequence()
			}
			if !r.GetHasMore() || len(r.GetEvents()) == 0 {
				break
			}
		}
	}
	// One object at a time would take longer than a read may on a long run's tens of thousands of
	// objects: eight at a time, each into its own slot.
	var refunds, payouts, payments []string
	for id, types := range s.events {
		switch {
		case strings.HasPrefix(types[0], "refund."):
			refunds = append(refunds, id)
		case strings.HasPrefix(types[0], "payout."):
			payouts = append(payouts, id)
		}
	}
	if err := readEach(ctx, refunds, s.refunds, func(ctx context.Context, id string) (*paymentv1.Refund, error) {
		r, err := p.admin.GetRefund(ctx, &paymentv1.GetRefundRequest{RefundId: id})
		return r.GetRefund(), err
	}); err != nil {
		return nil, fmt.Errorf("GetRefund %w", err)
	}
	if err := readEach(ctx, payouts, s.payouts, func(ctx context.Context, id string) (*paymentv1.Payout, error) {
		r, err := p.admin.GetPayout(ctx, &paymentv1.GetPayoutRequest{PayoutId: id})
		return r.GetPayout(), err
	}); err != nil {
		return nil, fmt.Errorf("GetPayout %w", err)
	}
	// ListPayments pages carry the attempts too, but read each payment once more on its own so a
	// payment the listing missed (it must not) shows as a difference rather than being skipped.
	for id := range s.payments {
		payments = append(payments, id)
	}
	if err := readEach(ctx, payments, s.payments, func(ctx context.Context, id string) (*paymentv1.Payment, error) {
		r, err := p.admin.GetPayment(ctx, &paymentv1.GetPaymentRequest{PaymentId: id})
		return r.GetPayment(), err
	}); err != nil {
		return nil, fmt.Errorf("GetPayment %w", err)
	}
	for _, kind := range []acquirerv1.OperationKind{acquirerv1.OperationKind_OPERATION_KIND_AUTHORIZE, acquirerv1.OperationKind_OPERATION_KIND_CAPTURE,
		acquirerv1.OperationKind_OPERATION_KIND_VOID, acquirerv1.OperationKind_OPERATION_KIND_REFUND, acquirerv1.OperationKind_OPERATION_KIND_PAYOUT} {
		tok := ""
		for {
			r, err := c.acq().ListOperations(ctx, &acquirerv1.ListOperationsRequest{Kind: kind, PageSize: 1000, PageToken: tok})
			if err != nil {
				return nil, fmt.Errorf("acquirer ListOperations: %w", err)
			}
			s.ops[kind] = append(s.ops[kind], r.GetOperations()...)
			if tok = r.GetNextPageToken(); tok == "" {
				break
			}
		}
	}
	var err error
	if s.balance, err = p.admin.GetLedgerBalance(ctx, &paymentv1.GetLedgerBalanceRequest{}); err != nil {
		return nil, fmt.Errorf("GetLedgerBalance: %w", err)
	}
	var after int64
	for {
		r, err := p.admin.ListLedgerEntries(ctx, &paymentv1.ListLedgerEntriesRequest{AfterTransactionId: after, PageSize: 500})
		if err != nil {
			return nil, fmt.Errorf("ListLedgerEntries: %w", err)
		}
		s.txs = append(s.txs, r.GetTransactions()...)
		if n := len(r.GetTransactions()); n > 0 {
			after = r.GetTransactions()[n-1].GetTransactionId()
		}
		if !r.GetHasMore() || len(r.GetTransactions()) == 0 {
			break
		}
	}
	// Risk last: once payment's objects read above are all final (settled), nothing moves risk any
	// more, so a balance read after them includes every transfer they made. Read before them, it
	// could miss a credit or reversal that landed in between (and I4 would fail on a skewed read).
	for _, account := range chaosAccounts {
		a, err := c.riskClient().GetAccount(ctx, &riskv1.GetAccountRequest{AccountId: account})
		if err != nil {
			return nil, fmt.Errorf("risk GetAccount: %w", err)
		}
		for _, b := range a.GetAccount().GetBalances() {
			if b.GetAssetId() == "USD" {
				cents, err := cents(b.GetTotal())
				if err != nil {
					return nil, err
				}
				s.risk[account] = cents
			}
		}
	}
	return s, nil
}

// readEach reads every id into into, eight at a time, and returns the first error, naming its id
// (the other readers stop at their next id).
func readEach[T any](ctx context.Context, ids []string, into map[string]T, read func(context.Context, string) (T, error)) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan string)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for id := range next {
				v, err := read(ctx, id)
				if err != nil {
					cancel(fmt.Errorf("%s: %w", id, err))
					continue
				}
				mu.Lock()
				into[id] = v
				mu.Unlock()
			}
		})
	}
	for _, id := range ids {
		select {
		case next <- id:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && err != context.Canceled {
		return err
	}
	return nil
}

// cents reads a risk decimal ("12.5", "12.50000000") as USD cents; finer amounts are an error (every
// USD movement through payment is in cents).
func cents(v string) (int64, error) {
	whole, frac, _ := strings.Cut(v, ".")
	if strings.TrimRight(frac[min(2, len(frac)):], "0") != "" {
		return 0, fmt.Errorf("risk amount %q is not whole cents", v)
	}
	frac = (frac + "00")[:2]
	neg := strings.HasPrefix(whole, "-")
	n, err := strconv.ParseInt(strings.TrimPrefix(whole, "-")+frac, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("risk amount %q: %w", v, err)
	}
	if neg {
		n = -n
	}
	return n, nil
}

// unsettled lists what is still in a middle state; the checks run once it is empty.
func (s *chaosState) unsettled() []string {
	var out []string
	for id, p := range s.payments {
		if p.GetStatus() == paymentv1.PaymentStatus_PAYMENT_STATUS_PROCESSING {
			out = append(out, "payment "+id+" processing")
		}
		for _, a := range p.GetAttempts() {
			if st := a.GetStatus(); st == paymentv1.AttemptStatus_ATTEMPT_STATUS_UNKNOWN || st == paymentv1.AttemptStatus_ATTEMPT_STATUS_PENDING {
				out = append(out, fmt.Sprintf("payment %s attempt %s %v", id, a.GetAttemptId(), st))
			}
		}
		if p.GetAmountCaptured().GetAmount() > 0 && capturedStatus(p.GetStatus()) && !p.GetRiskCredited() {
			out = append(out, "payment "+id+" captured, risk not credited yet")
		}
	}
	for id, r := range s.refunds {
		if st := r.GetStatus(); st != paymentv1.RefundStatus_REFUND_STATUS_SUCCEEDED && st != paymentv1.RefundStatus_REFUND_STATUS_FAILED {
			out = append(out, fmt.Sprintf("refund %s %v", id, st))
		}
	}
	for id, x := range s.payouts {
		if st := x.GetStatus(); st != paymentv1.PayoutStatus_PAYOUT_STATUS_SUCCEEDED && st != paymentv1.PayoutStatus_PAYOUT_STATUS_FAILED {
			out = append(out, fmt.Sprintf("payout %s %v", id, st))
		}
	}
	return out
}

func capturedStatus(st paymentv1.PaymentStatus) bool {
	return st == paymentv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED || st == paymentv1.PaymentStatus_PAYMENT_STATUS_PARTIALLY_REFUNDED ||
		st == paymentv1.PaymentStatus_PAYMENT_STATUS_REFUNDED
}
