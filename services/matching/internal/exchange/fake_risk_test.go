package exchange

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/matching/internal/book"
)

// fakeRisk stands in for the risk service in the exchange's unit tests (the integration tests use
// the real one). It behaves like the risk service on every point these tests rely on:
//   - funds: each account has a quote and a base balance (in ticks×lots and lots); a check reserves
//     price×qty of quote for a buy, qty of base for a sell, and is refused when the free balance
//     does not cover it;
//   - settlement streams: a watermark per stream, parts at or below it skipped, a gap refused, each
//     part applied all or nothing with both legs of every trade; a leg whose reservation is not
//     open takes its funds from the free balance, and what that lacks from the shard's other
//     reservations of the account (dropped whole, counted in the answer); an unknown account
//     refuses the part;
//   - re-syncs: refused unless the watermark matches; upserts the named reservations at their
//     remaining quantity and, on the final chunk, drops the shard's reservations of another session
//     or a generation <= the sync's;
//   - restart: a new incarnation and no reservations; balances and watermarks stay (they are durable).
//
// Fees are not modelled (the risk engine's tests cover them).
type fakeRisk struct {
	mu          sync.Mutex
	next        uint64
	incarnation uint64
	open        map[uint64]*fakeReservation
	balances    map[string]*fakeBalance
	watermarks  map[Stream]uint64
	bought      map[string]int64 // lots settled per account
	sold        map[string]int64
	trades      int // trades applied
	settles     int // Settle calls that applied something
	syncs       int // final sync chunks applied
	dropped     int // reservations dropped by syncs
	reclaimed   int // reservations dropped to pay legs without one

	rejectAll bool
	down      bool
	// lostAnswers makes the next n Check calls reserve and then fail as if the answer timed out.
	lostAnswers int
	// refuse makes Settle refuse any part with a trade of this account (a permanent error).
	refuse string
	// holdSettle makes Settle fail as if risk were unreachable (checks still pass).
	holdSettle bool
	// halted are the accounts whose kill switch is on (allHalted: the global one); like risk, the
	// fake refuses their checks and reports them in the answer to a probe.
	halted    map[string]bool
	allHalted bool
	// gate, when set, holds every Check call with an order at gatePrice until it is closed.
	gate      chan struct{}
	gatePrice int64
	gated     atomic.Int32 // calls held at the gate so far
}

type fakeReservation struct {
	check      RiskCheck
	account    string
	qty        int64
	shard      uint32
	owned      bool
	session    uint64
	generation uint64
}

// fakeBalance: quote in ticks×lots, base in lots.
type fakeBalance struct {
	quote, quoteReserved int64
	base, baseReserved   int64
}

const (
	fakeQuote = int64(1) << 50
	fakeBase  = int64(1) << 40
)

func newFakeRisk() *fakeRisk {
	return &fakeRisk{incarnation: 1, open: map[uint64]*fakeReservation{}, balances: map[string]*fakeBalance{},
		watermarks: map[Stream]uint64{}, bought: map[string]int64{}, sold: map[string]int64{}}
}

// account returns an account's balance, opening it funded on first use; "broke" has nothing and
// "ghost" does not exist.
func (f *fakeRisk) account(name string) *fakeBalance {
	if name == "ghost" {
		return nil
	}
	b := f.balances[name]
	if b == nil {
		b = &fakeBalance{quote: fakeQuote, base: fakeBase}
		switch name {
		case "broke":
			b = &fakeBalance{}
		case "tight2": // two buys of 5 lots at 100.00 and 10.00 to spare
			b = &fakeBalance{quote: 10000*5*2 + 1000, base: fakeBase}
		case "tight": // exactly one buy of 5 lots at 100.00
			b = &fakeBalance{quote: 10000 * 5, base: fakeBase}
		}
		f.balances[name] = b
	}
	return b
}

func (f *fakeRisk) Symbol(_ context.Context, symbol string) (RiskSymbol, error) {
	if symbol == "MISSING" {
		return RiskSymbol{}, errs.New(errs.KindNotFound, "symbol: unknown symbol %q", symbol)
	}
	return RiskSymbol{PriceScale: 2, QtyScale: 3, QuoteScale: 8, TakerFeeRate: "0.001"}, nil
}

func needs(side book.Side, price, qty int64) (quote, base int64) {
	if side == book.Buy {
		return price * qty, 0
	}
	return 0, qty
}

func (f *fakeRisk) Check(_ context.Context, b CheckBatch) (CheckAnswer, error) {
	f.mu.Lock()
	gate, price := f.gate, f.gatePrice
	f.mu.Unlock()
	for _, c := range b.Checks {
		if gate != nil && c.Price == price {
			f.gated.Add(1)
			<-gate // a test holds checks at this price
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return CheckAnswer{}, errs.New(errs.KindUnavailable, "risk is down")
	}
	out := make([]RiskDecision, len(b.Checks))
	for i, c := range b.Checks {
		bal := f.account(c.Account)
		q, base := needs(c.Side, c.Price, c.Qty)
		// A replaced reservation is released in the same step, and kept if the check fails.
		old, oldQty := f.open[c.Replaces], int64(0)
		if old != nil && old.account == c.Account {
			oldQty = old.qty
			f.unreserve(c.Replaces, old.qty)
		} else {
			old = nil
		}
		if f.rejectAll || f.allHalted || f.halted[c.Account] || bal == nil || bal.quote-bal.quoteReserved < q || bal.base-bal.baseReserved < base {
			if old != nil {
				old.qty = oldQty
				oq, ob := needs(old.check.Side, old.check.Price, old.qty)
				bal.quoteReserved += oq
				bal.baseReserved += ob
				f.open[c.Replaces] = old
			}
			out[i] = RiskDecision{Reason: "REJECT_REASON_INSUFFICIENT_FUNDS"}
			continue
		}
		bal.quoteReserved += q
		bal.baseReserved += base
		f.next++
		f.open[f.next] = &fakeReservation{check: c, account: c.Account, qty: c.Qty, shard: c.Shard, owned: b.Owner != "",
			session: b.Session, generation: b.Generation}
		out[i] = RiskDecision{Accepted: true, ReservationID: f.next}
	}
	if f.lostAnswers > 0 {
		f.lostAnswers--
		return CheckAnswer{}, errs.New(errs.KindUnavailable, "risk.CheckOrders: deadline exceeded")
	}
	return CheckAnswer{Decisions: out, Incarnation: f.incarnation}, nil
}

// unreserve takes qty lots (at the reservation's price) out of reservation id, dropping it when
// nothing is left, and returns the lots it covered.
func (f *fakeRisk) unreserve(id uint64, qty int64) int64 {
	r := f.open[id]
	if r == nil {
		return 0
	}
	qty = min(qty, r.qty)
	bal := f.balances[r.account]
	q, base := needs(r.check.Side, r.check.Price, qty)
	bal.quoteReserved -= q
	bal.baseReserved -= base
	if r.qty -= qty; r.qty == 0 {
		delete(f.open, id)
	}
	return qty
}

func (f *fakeRisk) Settle(_ context.Context, b SettleBatch) (SettleAnswer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down || f.holdSettle {
		return SettleAnswer{}, errs.New(errs.KindUnavailable, "risk is down")
	}
	wm := f.watermarks[b.Stream]
	switch {
	case b.After > wm:
		return SettleAnswer{}, errs.New(errs.KindFailedPrecondition, "stream %v: a gap after %d (risk is at %d)", b.Stream, b.After, wm)
	case b.Through <= wm:
		ans := SettleAnswer{Watermark: wm, Incarnation: f.incarnation, AllHalted: f.allHalted}
		if len(b.Items) == 0 && b.Through == 0 {
			for a := range f.halted {
				ans.HaltedAccounts = append(ans.HaltedAccounts, a)
			}
		}
		return ans, nil
	}
	// Validate the whole part before changing anything: all or nothing.
	for _, it := range b.Items {
		if it.Seq <= wm || it.Release != 0 || it.ShrinkID != 0 {
			continue
		}
		for _, acct := range []string{it.Trade.Buyer.Account, it.Trade.Seller.Account} {
			if f.account(acct) == nil || acct == f.refuse {
				return SettleAnswer{}, errs.New(errs.KindNotFound, "unknown account %q", acct)
			}
		}
		if r := f.open[it.Trade.Buyer.ReservationID]; r != nil && (r.account != it.Trade.Buyer.Account || r.check.Side != book.Buy || it.Trade.Price > r.check.Price) {
			return SettleAnswer{}, errs.Invalid("price", "trade at %d outside the buyer's reservation", it.Trade.Price)
		}
		if r := f.open[it.Trade.Seller.ReservationID]; r != nil && (r.account != it.Trade.Seller.Account || r.check.Side != book.Sell || it.Trade.Price < r.check.Price) {
			return SettleAnswer{}, errs.Invalid("price", "trade at %d outside the seller's reservation", it.Trade.Price)
		}
	}
	for _, it := range b.Items {
		if it.Seq <= wm {
			continue
		}
		if it.Release != 0 {
			if r := f.open[it.Release]; r != nil {
				f.unreserve(it.Release, r.qty)
			}
			continue
		}
		if it.ShrinkID != 0 {
			f.unreserve(it.ShrinkID, it.Shrink)
			continue
		}
		t := it.Trade
		// The buyer's reservation was made at its limit: a better price frees the difference.
		f.unreserve(t.Buyer.ReservationID, t.Qty)
		f.unreserve(t.Seller.ReservationID, t.Qty)
		buyer, seller := f.account(t.Buyer.Account), f.account(t.Seller.Account)
		buyer.quote -= t.Price * t.Qty
		buyer.base += t.Qty
		seller.base -= t.Qty
		seller.quote += t.Price * t.Qty
		f.bought[t.Buyer.Account] += t.Qty
		f.sold[t.Seller.Account] += t.Qty
		f.trades++
	}
	reclaimed := 0
	for _, name := range slices.Sorted(maps.Keys(f.balances)) {
		bal := f.balances[name]
		// Legs paid from the free balance overdrew it: the shard's other reservations of the
		// account pay, dropped whole, lowest id first.
		for _, id := range slices.Sorted(maps.Keys(f.open)) {
			r := f.open[id]
			if bal.quote >= bal.quoteReserved && bal.base >= bal.baseReserved {
				break
			}
			q, base := needs(r.check.Side, r.check.Price, r.qty)
			if r.account != name || !r.owned || r.shard != b.Stream.Shard || (q == 0 || bal.quote >= bal.quoteReserved) && (base == 0 || bal.base >= bal.baseReserved) {
				continue
			}
			f.unreserve(id, r.qty)
			reclaimed++
		}
		if bal.quote < bal.quoteReserved || bal.base < bal.baseReserved {
			panic(fmt.Sprintf("fake risk: %s is below its reservations: %+v", name, *bal)) // the test's data is wrong
		}
	}
	f.watermarks[b.Stream] = b.Through
	f.settles++
	f.reclaimed += reclaimed
	return SettleAnswer{Watermark: b.Through, Incarnation: f.incarnation, Reclaimed: reclaimed}, nil
}

func (f *fakeRisk) Sync(_ context.Context, b SyncBatch) (SyncAnswer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return SyncAnswer{}, errs.New(errs.KindUnavailable, "risk is down")
	}
	if wm := f.watermarks[b.Stream]; wm != b.Watermark {
		return SyncAnswer{}, errs.New(errs.KindFailedPrecondition, "stream %v is at %d, the sync is as of %d", b.Stream, wm, b.Watermark)
	}
	ans := SyncAnswer{Incarnation: f.incarnation}
	for _, r := range b.Reservations {
		bal := f.account(r.Account)
		if cur := f.open[r.ID]; cur != nil {
			f.unreserve(r.ID, cur.qty)
		}
		q, base := needs(r.Side, r.Price, r.Qty)
		if bal == nil || bal.quote-bal.quoteReserved < q || bal.base-bal.baseReserved < base {
			ans.Uncovered = append(ans.Uncovered, r.ID)
			continue
		}
		bal.quoteReserved += q
		bal.baseReserved += base
		f.open[r.ID] = &fakeReservation{check: RiskCheck{Account: r.Account, Side: r.Side, Price: r.Price, Qty: r.Qty}, account: r.Account,
			qty: r.Qty, shard: b.Stream.Shard, owned: true, session: b.Session, generation: b.Generation + 1}
	}
	if b.Final {
		for id, r := range f.open {
			if r.owned && r.shard == b.Stream.Shard && (r.session != b.Session || r.generation <= b.Generation) {
				f.unreserve(id, r.qty)
				ans.Dropped++
			}
		}
		f.syncs++
		f.dropped += ans.Dropped
	}
	return ans, nil
}

func (f *fakeRisk) Release(_ context.Context, ids []uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errs.New(errs.KindUnavailable, "risk is down")
	}
	for _, id := range ids {
		if r := f.open[id]; r != nil {
			f.unreserve(id, r.qty)
		}
	}
	return nil
}

// restart is a risk restart: reservations are lost, the incarnation changes.
func (f *fakeRisk) restart() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.incarnation++
	f.open = map[uint64]*fakeReservation{}
	for _, b := range f.balances {
		b.quoteReserved, b.baseReserved = 0, 0
	}
}

func (f *fakeRisk) set(fn func(f *fakeRisk)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeRisk) openCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.open)
}

// openQty returns the lots each open reservation still holds.
func (f *fakeRisk) openQty() map[uint64]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[uint64]int64{}
	for id, r := range f.open {
		out[id] = r.qty
	}
	return out
}

func (f *fakeRisk) filledQty(account string) (bought, sold int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bought[account], f.sold[account]
}

// conserved checks I1 over the accounts the test used: every account started with the same funds,
// and trades only move them.
func (f *fakeRisk) conserved() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var quote, base, wantQuote, wantBase int64
	for name, b := range f.balances {
		quote += b.quote
		base += b.base
		switch name {
		case "broke":
		case "tight":
			wantQuote += 10000 * 5
			wantBase += fakeBase
		case "tight2":
			wantQuote += 10000*5*2 + 1000
			wantBase += fakeBase
		default:
			wantQuote += fakeQuote
			wantBase += fakeBase
		}
	}
	if quote != wantQuote || base != wantBase {
		return fmt.Errorf("money not conserved: quote %d (want %d), base %d (want %d)", quote, wantQuote, base, wantBase)
	}
	return nil
}

func (f *fakeRisk) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprintf("open=%d trades=%d", len(f.open), f.trades)
}
