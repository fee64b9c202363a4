package matching_test

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/shopspring/decimal"
	"google.golang.org/grpc/codes"

	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
)

// chaosOrder is what the load knows about one order it tried to enter.
type chaosOrder struct {
	account, symbol, cid string
	side                 matchingv1.Side
	// Set once matching answered the submit with an accepted order (any status but REJECTED): from
	// then on the order must survive every crash.
	acked bool
	// The largest filled quantity matching has acknowledged for the order; it may only grow.
	ackedFilled decimal.Decimal
	quantity    decimal.Decimal // total quantity in the latest answer, for amends
	open        bool            // resting after the latest answer
	history     []string        // the commands answered for it, for the diff of a violation
}

// maxHistory bounds what the ledger keeps per order; an order is rarely amended more often.
const maxHistory = 8

// chaosLedger records everything the load did that the invariants are checked against: every order
// attempted (acknowledged or not) and every credit and debit risk confirmed. Safe for concurrent use.
type chaosLedger struct {
	mu      sync.Mutex
	orders  []*chaosOrder
	byKey   map[string]*chaosOrder // account/symbol/cid
	credits map[string]decimal.Decimal
	debits  map[string]decimal.Decimal
	stats   map[string]int
	codes   map[string]int // non-OK answers by RPC and code
}

func newChaosLedger() *chaosLedger {
	return &chaosLedger{byKey: map[string]*chaosOrder{}, credits: map[string]decimal.Decimal{},
		debits: map[string]decimal.Decimal{}, stats: map[string]int{}, codes: map[string]int{}}
}

func orderKey(account, symbol, cid string) string { return account + "/" + symbol + "/" + cid }

// attempt records an order before its first send, so an order that reaches matching without an
// answer is still looked up after recovery.
func (l *chaosLedger) attempt(r *matchingv1.SubmitOrderRequest) {
	l.mu.Lock()
	defer l.mu.Unlock()
	o := &chaosOrder{account: r.GetAccountId(), symbol: r.GetSymbol(), cid: r.GetClientOrderId(), side: r.GetSide()}
	l.orders = append(l.orders, o)
	l.byKey[orderKey(o.account, o.symbol, o.cid)] = o
	l.stats["orders attempted"]++
}

// answered records matching's answer about an order (submit, cancel or amend) and reports whether
// the order is open afterwards.
func (l *chaosLedger) answered(what string, o *matchingv1.Order, duplicate bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	rec := l.byKey[orderKey(o.GetAccountId(), o.GetSymbol(), o.GetClientOrderId())]
	if rec == nil {
		return false
	}
	st := o.GetStatus()
	if what == "submit" {
		switch {
		case st == matchingv1.OrderStatus_ORDER_STATUS_REJECTED:
			l.stats["orders rejected"]++
			if o.GetRejectReason() == matchingv1.RejectReason_REJECT_REASON_RISK {
				l.stats["rejected by risk: "+o.GetRiskRejectReason()]++
			}
		case !rec.acked:
			rec.acked = true
			l.stats["orders acknowledged"]++
		}
		if duplicate {
			l.stats["submit retries answered duplicate"]++
		}
	} else if st != matchingv1.OrderStatus_ORDER_STATUS_REJECTED {
		l.stats[what+"s acknowledged"]++
	}
	if st == matchingv1.OrderStatus_ORDER_STATUS_REJECTED {
		// A refused cancel or amend answers the order as it is; a refused submit changed nothing.
		if what == "submit" {
			return false
		}
	}
	if len(rec.history) < maxHistory {
		rec.history = append(rec.history, fmt.Sprintf("%s: %s %s@%s filled %s", what,
			strings.TrimPrefix(st.String(), "ORDER_STATUS_"), o.GetQuantity(), o.GetPrice(), o.GetFilledQuantity()))
	}
	if f, err := decimal.NewFromString(o.GetFilledQuantity()); err == nil && f.GreaterThan(rec.ackedFilled) {
		rec.ackedFilled = f
	}
	if q, err := decimal.NewFromString(o.GetQuantity()); err == nil {
		rec.quantity = q
	}
	rec.open = st == matchingv1.OrderStatus_ORDER_STATUS_NEW || st == matchingv1.OrderStatus_ORDER_STATUS_PARTIALLY_FILLED
	return rec.open
}

func (l *chaosLedger) order(account, symbol, cid string) (chaosOrder, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rec := l.byKey[orderKey(account, symbol, cid)]
	if rec == nil {
		return chaosOrder{}, false
	}
	return *rec, true
}

// transferred records a credit or debit that risk confirmed.
func (l *chaosLedger) transferred(asset string, amount decimal.Decimal, credit bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if credit {
		l.credits[asset] = l.credits[asset].Add(amount)
		l.stats["credits"]++
	} else {
		l.debits[asset] = l.debits[asset].Add(amount)
		l.stats["debits"]++
	}
}

func (l *chaosLedger) count(what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats[what]++
}

func (l *chaosLedger) failed(rpc string, code codes.Code) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.codes[rpc+" "+code.String()]++
}

// snapshot copies the ledger for a check (the load is stopped while checks run).
func (l *chaosLedger) snapshot() (orders []chaosOrder, credits, debits map[string]decimal.Decimal) {
	l.mu.Lock()
	defer l.mu.Unlock()
	orders = make([]chaosOrder, len(l.orders))
	for i, o := range l.orders {
		orders[i] = *o
		orders[i].history = slices.Clone(o.history)
	}
	credits, debits = map[string]decimal.Decimal{}, map[string]decimal.Decimal{}
	for a, v := range l.credits {
		credits[a] = v
	}
	for a, v := range l.debits {
		debits[a] = v
	}
	return orders, credits, debits
}

// summary is one line of counts for the test log.
func (l *chaosLedger) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var parts []string
	for k, v := range l.stats {
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
	}
	for k, v := range l.codes {
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func (l *chaosLedger) stat(what string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats[what]
}
