package exchange

import (
	"context"
	"fmt"
	"sync"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/matching/internal/book"
)

// fakeRisk stands in for the risk service in the exchange's unit tests (the integration tests use
// the real one). It tracks reservations and applied executions the way the risk service does, so
// tests can assert that every fill is settled once and every reservation is released.
type fakeRisk struct {
	mu        sync.Mutex
	next      uint64
	open      map[uint64]RiskCheck
	execs     map[string]Execution
	settles   int
	rejectAll bool
	down      bool
	restored  []Reservation
}

func newFakeRisk() *fakeRisk {
	return &fakeRisk{open: map[uint64]RiskCheck{}, execs: map[string]Execution{}}
}

func (f *fakeRisk) Symbol(_ context.Context, symbol string) (RiskSymbol, error) {
	if symbol == "MISSING" {
		return RiskSymbol{}, errs.New(errs.KindNotFound, "symbol: unknown symbol %q", symbol)
	}
	return RiskSymbol{PriceScale: 2, QtyScale: 3, QuoteScale: 8, TakerFeeRate: "0.001"}, nil
}

func (f *fakeRisk) Check(_ context.Context, checks []RiskCheck) ([]RiskDecision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, errs.New(errs.KindUnavailable, "risk is down")
	}
	out := make([]RiskDecision, len(checks))
	for i, c := range checks {
		if f.rejectAll || c.Account == "broke" {
			out[i] = RiskDecision{Reason: "REJECT_REASON_INSUFFICIENT_FUNDS"}
			continue
		}
		f.next++
		f.open[f.next] = c
		out[i] = RiskDecision{Accepted: true, ReservationID: f.next}
	}
	return out, nil
}

func (f *fakeRisk) Settle(_ context.Context, execs []Execution, releases []uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.settles++
	for _, x := range execs {
		x.Spec = nil // compared by content, like the risk service does
		if prev, ok := f.execs[x.ExecID]; ok {
			if prev != x {
				return errs.New(errs.KindAlreadyExists, "execution %s reused with other content", x.ExecID)
			}
			continue
		}
		r, ok := f.open[x.ReservationID]
		if !ok {
			return errs.New(errs.KindNotFound, "reservation %d is not open", x.ReservationID)
		}
		if r.Side != x.Side || (x.Side == book.Buy && x.Price > r.Price) || (x.Side == book.Sell && x.Price < r.Price) {
			return errs.Invalid("price", "execution %s outside its reservation", x.ExecID)
		}
		if x.Qty > r.Qty {
			return errs.Invalid("qty", "execution %s larger than its reservation", x.ExecID)
		}
		r.Qty -= x.Qty
		f.open[x.ReservationID] = r
		f.execs[x.ExecID] = x
	}
	for _, id := range releases {
		delete(f.open, id)
	}
	return nil
}

func (f *fakeRisk) Restore(_ context.Context, rs []Reservation) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range rs {
		if _, ok := f.open[r.ID]; ok {
			return errs.New(errs.KindAlreadyExists, "reservation %d is already open", r.ID)
		}
	}
	for _, r := range rs {
		f.open[r.ID] = RiskCheck{Account: r.Account, Side: r.Side, Price: r.Price, Qty: r.Qty}
		f.restored = append(f.restored, r)
	}
	return nil
}

func (f *fakeRisk) openCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.open)
}

func (f *fakeRisk) filledQty(account string) (bought, sold int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, x := range f.execs {
		if x.Account != account {
			continue
		}
		if x.Side == book.Buy {
			bought += x.Qty
		} else {
			sold += x.Qty
		}
	}
	return
}

func (f *fakeRisk) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprintf("open=%d execs=%d", len(f.open), len(f.execs))
}
