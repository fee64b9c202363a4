package engine

import (
	"fmt"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// Execution is one side of a trade, reported by the matching engine. A trade between two accounts
// arrives as two executions (one buy, one sell), each against the reservation of its order.
type Execution struct {
	ExecID        string `json:"exec_id"` // unique per execution; the idempotency key
	ReservationID uint64 `json:"reservation_id"`
	Account       string `json:"account"`
	Symbol        string `json:"symbol"`
	Side          Side   `json:"side"`
	Price         int64  `json:"price"` // ticks; at or better than the reservation's price
	Qty           int64  `json:"qty"`   // lots; at most what the reservation still holds
	Fee           int64  `json:"fee"`   // quote units, 0 <= Fee <= price × qty
	Time          int64  `json:"time"`  // unix nanoseconds; decides the trading day
}

// ExecutionsResult reports an applied batch.
type ExecutionsResult struct {
	Seq        uint64 // the event that applied the batch; 0 if every execution was a duplicate
	Applied    int
	Duplicates int // executions whose ExecID had already been applied, skipped
}

// ApplyExecutions settles a batch of fills, all or nothing. For each fill the buyer pays
// price × qty + fee in quote and receives qty in base, the seller delivers the base and receives
// price × qty − fee; fees go to the fee account. The reservation keeps exactly what its unfilled rest
// needs at its own price, so a fill at a better price frees the surplus. Position, average price,
// realised PnL, fees, the daily loss and the high-water mark are updated and the symbol's mark price
// becomes the fill price.
//
// Executions whose ExecID was already applied are skipped (an ExecID reused with different content is
// an error). Everything is validated before anything changes: an unknown account, symbol or
// reservation, a fill worse than its limit or larger than what remains, an overflow, or a batch that
// would leave any balance below what is reserved, fails the whole batch with nothing changed.
//
// A fee larger than the reservation set aside for it is paid from the available balance; if that is
// not enough the batch fails, so fee rounding across partial fills must stay within the reservation
// or the account's free funds.
func (e *Engine) ApplyExecutions(execs []Execution, persist PersistFunc) (ExecutionsResult, error) {
	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	return e.applyExecutions(execs, persist, false)
}

func (e *Engine) applyExecutions(execs []Execution, persist PersistFunc, replay bool) (ExecutionsResult, error) {
	var res ExecutionsResult
	if len(execs) == 0 {
		return res, errs.Invalid("executions", "must not be empty")
	}
	fresh := make([]Execution, 0, len(execs))
	at := make([]int, 0, len(execs)) // index in execs of each fresh execution, for error fields
	inBatch := newSmallIndex[string, struct{}](len(execs))
	for i, x := range execs {
		if x.ExecID == "" || len(x.ExecID) > maxRefLen {
			return res, errs.Invalid(execField(i, "exec_id"), "must be 1 to %d bytes", maxRefLen)
		}
		if _, dup := inBatch.get(x.ExecID); dup {
			return res, errs.Invalid(execField(i, "exec_id"), "%q appears twice in the batch", x.ExecID)
		}
		inBatch.put(x.ExecID, struct{}{})
		if prev, done := e.execs[x.ExecID]; done {
			if prev != x {
				return res, errs.New(errs.KindAlreadyExists, "execution %q was already applied with different content", x.ExecID)
			}
			res.Duplicates++
			continue
		}
		fresh = append(fresh, x)
		at = append(at, i)
	}
	if len(fresh) == 0 {
		return res, nil
	}

	// Resolve every account up front: they must all be locked before validation starts.
	accts := make([]*account, 0, len(fresh)+1)
	accts = append(accts, e.feeAccount)
	byID := make([]*account, len(fresh))
	for i, x := range fresh {
		if byID[i] = e.accounts.lookup(x.Account); byID[i] == nil {
			return res, errs.New(errs.KindNotFound, "%s: unknown account %q", execField(at[i], "account"), x.Account)
		}
		accts = append(accts, byID[i])
	}
	unlock := lockAccounts(accts)
	defer unlock()

	mode := planLive
	if replay {
		mode = planReplay
	}
	plan, err := e.planExecutions(fresh, at, byID, mode, nil)
	if err != nil {
		return res, err
	}
	ev := Event{Kind: EventExecutions, Executions: fresh}
	if err := e.commit(&ev, persist, func() { e.commitExecutions(plan, fresh) }); err != nil {
		return res, err
	}
	res.Seq, res.Applied = ev.Seq, len(fresh)
	return res, nil
}

// executionPlan is the complete effect of a batch, computed on copies so that applying it cannot
// fail: new balances, new positions, what is left of each reservation, and the marks.
type executionPlan struct {
	// unreserved counts fills (in planSettle mode) whose reservation was not open; reclaimed the
	// owner's reservations dropped to pay for them (see reclaimOwned).
	unreserved, reclaimed int

	balances     smallIndex[balanceKey, *plannedBalance]
	positions    smallIndex[positionKey, *plannedPosition]
	reservations smallIndex[uint64, *plannedReservation]
	marks        []plannedMark

	// The entries live in buffers sized for the worst case of the batch (each fill touches at most
	// three balances, one position and one reservation), so appending never moves them and the
	// pointers handed out stay valid, with one allocation per kind instead of one per entry.
	balanceBuf     []plannedBalance
	positionBuf    []plannedPosition
	reservationBuf []plannedReservation
}

type balanceKey struct {
	acct  *account
	asset int32
}

type plannedBalance struct {
	balanceKey
	bal   balance
	asset *asset
	// freed is what the part's releases and shrinks will free of bal.reserved once it is
	// committed (settlement only; see creditFrees).
	freed int64
}

type positionKey struct {
	acct   *account
	symbol int32
}

type plannedPosition struct {
	positionKey
	pos position
}

type plannedReservation struct {
	acct     *account
	slot     int32
	id       uint64
	qty      int64
	amount   int64
	template reservation
}

type plannedMark struct {
	sym   *symbol
	price int64
}

func (p *executionPlan) balance(acct *account, a *asset) *balance {
	k := balanceKey{acct, a.index}
	b, ok := p.balances.get(k)
	if !ok {
		p.balanceBuf = append(p.balanceBuf, plannedBalance{balanceKey: k, bal: acct.balanceOf(a.index), asset: a})
		b = &p.balanceBuf[len(p.balanceBuf)-1]
		p.balances.put(k, b)
	}
	return &b.bal
}

func (p *executionPlan) position(acct *account, s *symbol) *position {
	k := positionKey{acct, s.index}
	pp, ok := p.positions.get(k)
	if !ok {
		pos := acct.positionOf(s.index)
		if pos == nil {
			pos = &zeroPosition
		}
		p.positionBuf = append(p.positionBuf, plannedPosition{positionKey: k, pos: *pos})
		pp = &p.positionBuf[len(p.positionBuf)-1]
		p.positions.put(k, pp)
	}
	return &pp.pos
}

// planMode says how a batch of executions meets reservations.
type planMode uint8

const (
	// planLive: every fill consumes its open reservation; a reservation that is not open fails the batch.
	planLive planMode = iota
	// planReplay: reservations are not consulted, since they are not part of the log.
	planReplay
	// planSettle: a fill consumes its reservation if it is open, and otherwise takes its funds from
	// the free balance. A settlement stream cannot refuse a trade because risk lost its reservations
	// in a restart: the trade happened, and refusing one leg would create or destroy money.
	planSettle
)

// planExecutions validates the batch and computes its effect. accts[i] is the account of execs[i]
// and at[i] its position in the caller's batch, for error fields. The caller holds the commit lock
// and the locks of every account involved.
func (e *Engine) planExecutions(execs []Execution, at []int, accts []*account, mode planMode, part *settlePart) (*executionPlan, error) {
	replay := mode == planReplay
	n := len(execs)
	plan := &executionPlan{
		balances:       newSmallIndex[balanceKey, *plannedBalance](3 * n),
		positions:      newSmallIndex[positionKey, *plannedPosition](n),
		marks:          make([]plannedMark, 0, n),
		balanceBuf:     make([]plannedBalance, 0, 3*n),
		positionBuf:    make([]plannedPosition, 0, n),
		reservationBuf: make([]plannedReservation, 0, n),
	}
	if !replay {
		plan.reservations = newSmallIndex[uint64, *plannedReservation](n)
	}
	cat := e.catalog.Load()
	for i, x := range execs {
		field := func(name string) string { return execField(at[i], name) }
		sym := cat.symbols[x.Symbol]
		switch {
		case sym == nil:
			return nil, errs.New(errs.KindNotFound, "%s: unknown symbol %q", field("symbol"), x.Symbol)
		case !x.Side.valid():
			return nil, errs.Invalid(field("side"), "must be buy or sell")
		case x.Price <= 0:
			return nil, errs.Invalid(field("price"), "must be positive")
		case x.Qty <= 0:
			return nil, errs.Invalid(field("qty"), "must be positive")
		case x.Fee < 0:
			return nil, errs.Invalid(field("fee"), "must not be negative")
		case x.Time < 0:
			return nil, errs.Invalid(field("time"), "must not be negative")
		}
		notional, ok := sym.notional(x.Price, x.Qty)
		if !ok {
			return nil, errs.Invalid(field("qty"), "notional overflows")
		}
		baseAmount, ok := sym.baseUnits(x.Qty)
		if !ok {
			return nil, errs.Invalid(field("qty"), "base amount overflows")
		}
		if x.Fee > notional {
			return nil, errs.Invalid(field("fee"), "exceeds the notional %d", notional)
		}
		acct := accts[i]

		var consumed int64 // lots of the fill its reservation covered
		if !replay {
			var err error
			if consumed, err = e.planReservation(plan, acct, sym, x, at[i], mode == planSettle); err != nil {
				return nil, err
			}
			if consumed < x.Qty {
				plan.unreserved++
			}
		}

		// Money moves. Base and quote totals may pass through any value here; the check after the
		// loop decides whether the batch as a whole leaves every balance covered.
		base, quote := plan.balance(acct, sym.base), plan.balance(acct, sym.quote)
		fees := plan.balance(e.feeAccount, sym.quote)
		var okBase, okQuote bool
		if x.Side == SideBuy {
			paid, ok := addChecked(notional, x.Fee)
			if !ok {
				return nil, errs.Invalid(field("fee"), "notional plus fee overflows")
			}
			quote.total, okQuote = subChecked(quote.total, paid)
			base.total, okBase = addChecked(base.total, baseAmount)
		} else {
			base.total, okBase = subChecked(base.total, baseAmount)
			quote.total, okQuote = addChecked(quote.total, notional-x.Fee)
		}
		if !okBase || !okQuote {
			return nil, errs.Invalid(field("qty"), "balance would overflow")
		}
		if fees.total, ok = addChecked(fees.total, x.Fee); !ok {
			return nil, errs.Invalid(field("fee"), "fee account balance would overflow")
		}

		pos := plan.position(acct, sym)
		if err := pos.applyFill(sym, x.Side, x.Price, x.Qty, notional, x.Fee, e.dayIndex(x.Time)); err != nil {
			return nil, err
		}
		if x.Side == SideBuy {
			pos.openBuy -= consumed
		} else {
			pos.openSell -= consumed
		}
		plan.marks = append(plan.marks, plannedMark{sym, x.Price})
	}
	if part != nil && !replay {
		e.creditFrees(plan, part.frees)
	}
	for _, b := range plan.balances.vals {
		if part != nil && !replay && part.owner > 0 && b.bal.total >= 0 && b.bal.available()+b.freed < 0 {
			plan.reclaimed += e.reclaimOwned(plan, b, part)
		}
		if b.bal.total < 0 || b.bal.reserved < 0 || b.bal.available()+b.freed < 0 {
			return nil, errs.New(errs.KindFailedPrecondition,
				"executions would leave account %q with %d %s against %d reserved", b.acct.id, b.bal.total, b.asset.ID, b.bal.reserved)
		}
	}
	return plan, nil
}

// creditFrees counts, on each planned balance, what the part's releases and shrinks will free
// of it. They apply after the part's trades (reservations are not part of the durable event),
// but in journal order a release may come before a trade it funds: after a risk restart a leg whose
// reservation was lost is paid from the free balance, which the release of another order of the
// account (cancelled, its funds reused by the new one) had made free. Only reservations of accounts
// the plan holds locked can matter (every planned balance is one of theirs); each free is counted
// on the reservation as the part's fills leave it, and in order, as Release and shrink will apply
// them.
func (e *Engine) creditFrees(plan *executionPlan, frees []SettlementItem) {
	if len(frees) == 0 {
		return
	}
	type left struct{ qty, amount int64 }
	seen := make(map[uint64]*left, len(frees))
	locked := make(map[*account]bool, len(plan.balances.vals))
	for _, b := range plan.balances.vals {
		locked[b.acct] = true
	}
	for _, it := range frees {
		id := it.Release
		if id == 0 {
			id = it.Shrink.ReservationID
		}
		var r reservation
		var acct *account
		l := seen[id]
		if pr, ok := plan.reservations.get(id); ok {
			r, acct = pr.template, pr.acct
			if l == nil {
				l = &left{pr.qty, pr.amount}
			}
		} else {
			loc, ok := e.dir.get(id)
			if !ok {
				continue
			}
			if acct = e.accounts.at(loc.account()); acct == nil || !locked[acct] {
				continue
			}
			slot := loc.slot()
			if int(slot) >= len(acct.reservations) || !acct.reservations[slot].live || acct.reservations[slot].id != id {
				continue
			}
			r = acct.reservations[slot]
			if l == nil {
				l = &left{r.qty, r.amount}
			}
		}
		seen[id] = l
		pb, ok := plan.balances.get(balanceKey{acct, r.symbol.reservedAsset(r.side).index})
		if !ok {
			continue // a balance no trade of the part touches: nothing to check
		}
		if it.Release != 0 {
			pb.freed += l.amount
			l.qty, l.amount = 0, 0
			continue
		}
		rest := max(l.qty-it.Shrink.Qty, 0)
		keep, _ := r.symbol.reserveAmount(r.side, r.price, rest, r.feePPM) // the rest needs no more than the whole
		pb.freed += l.amount - keep
		l.qty, l.amount = rest, keep
	}
}

// settlePart is what a settlement part adds to planning its executions: its releases and
// shrinks, which apply after its trades, and the owner of its stream.
type settlePart struct {
	frees []SettlementItem
	owner OwnerRef
}

// reclaimOwned pays what legs without a reservation overdrew on a planned balance (it still has the
// money: total >= 0, but its reservations hold it) from the account's other reservations of the
// part's owner, dropping them whole. That happens only after a risk restart, when the owner's
// re-sync restored reservations for its open orders while orders it had checked with the previous
// incarnation (and not yet re-synced) filled: the trade happened and must settle, and refusing it
// would halt the shard for good, since the re-sync that fixes the reservations queues behind it.
// The owner re-syncs after a restart anyway; an order whose reservation was dropped is then
// restored if the free balance covers it, or reported uncovered and cancelled. Reservations the
// part's frees name are left to them (creditFrees counted them). It returns how many it dropped.
func (e *Engine) reclaimOwned(plan *executionPlan, b *plannedBalance, part *settlePart) int {
	acct, dropped := b.acct, 0
	named := make(map[uint64]bool, len(part.frees))
	for _, it := range part.frees {
		named[it.Release] = true
		if it.Shrink != nil {
			named[it.Shrink.ReservationID] = true
		}
	}
	for slot := range acct.reservations {
		if b.bal.available()+b.freed >= 0 {
			break
		}
		r := &acct.reservations[slot]
		if !r.live || r.owner != int32(part.owner) || r.symbol.reservedAsset(r.side).index != b.balanceKey.asset || named[r.id] {
			continue
		}
		qty, amount := r.qty, r.amount
		if pr, ok := plan.reservations.get(r.id); ok {
			if pr.qty == 0 {
				continue
			}
			qty, amount = pr.qty, pr.amount
			pr.qty, pr.amount = 0, 0
		} else {
			// Not from reservationBuf: its capacity is the part's fills, and its entries must not move.
			plan.reservations.put(r.id, &plannedReservation{acct: acct, slot: int32(slot), id: r.id, template: *r})
		}
		b.bal.reserved -= amount
		pos := plan.positionOutsideBuf(acct, r.symbol)
		if r.side == SideBuy {
			pos.openBuy -= qty
		} else {
			pos.openSell -= qty
		}
		dropped++
	}
	return dropped
}

// positionOutsideBuf is position for entries beyond what the buffer was sized for.
func (p *executionPlan) positionOutsideBuf(acct *account, s *symbol) *position {
	k := positionKey{acct, s.index}
	if pp, ok := p.positions.get(k); ok {
		return &pp.pos
	}
	pos := acct.positionOf(s.index)
	if pos == nil {
		pos = &zeroPosition
	}
	pp := &plannedPosition{positionKey: k, pos: *pos}
	p.positions.put(k, pp)
	return &pp.pos
}

// planReservation checks a fill against its reservation and plans what the reservation keeps. With
// missingOK, a reservation that is not open is no error: nothing is planned. It returns the lots of
// the fill the reservation covered.
func (e *Engine) planReservation(plan *executionPlan, acct *account, sym *symbol, x Execution, i int, missingOK bool) (int64, error) {
	field := func(name string) string { return execField(i, name) }
	notOpen := func() (int64, error) {
		if missingOK {
			return 0, nil
		}
		return 0, errs.New(errs.KindNotFound, "%s: reservation %d is not open", field("reservation_id"), x.ReservationID)
	}
	pr, seen := plan.reservations.get(x.ReservationID)
	if !seen {
		loc, ok := e.dir.get(x.ReservationID)
		if !ok || x.ReservationID == 0 {
			return notOpen()
		}
		if loc.account() != acct.index {
			if missingOK {
				// Another account's reservation cannot be this order's: the order's own is gone.
				return 0, nil
			}
			return 0, errs.Invalid(field("reservation_id"), "reservation %d belongs to another account", x.ReservationID)
		}
		slot := loc.slot()
		if int(slot) >= len(acct.reservations) || !acct.reservations[slot].live || acct.reservations[slot].id != x.ReservationID {
			// A concurrent Release took it out of the directory and is waiting for the account lock.
			return notOpen()
		}
		r := acct.reservations[slot]
		plan.reservationBuf = append(plan.reservationBuf, plannedReservation{acct: acct, slot: slot, id: r.id, qty: r.qty, amount: r.amount, template: r})
		pr = &plan.reservationBuf[len(plan.reservationBuf)-1]
		plan.reservations.put(x.ReservationID, pr)
	}
	r := &pr.template
	if missingOK && (r.symbol.index != sym.index || r.side != x.Side) {
		return 0, nil
	}
	switch {
	case r.symbol.index != sym.index:
		return 0, errs.Invalid(field("symbol"), "reservation %d is for %s", r.id, r.symbol.spec.ID)
	case r.side != x.Side:
		return 0, errs.Invalid(field("side"), "reservation %d is a %s", r.id, r.side)
	case x.Side == SideBuy && x.Price > r.price:
		return 0, errs.Invalid(field("price"), "buy filled at %d above its limit %d", x.Price, r.price)
	case x.Side == SideSell && x.Price < r.price:
		return 0, errs.Invalid(field("price"), "sell filled at %d below its limit %d", x.Price, r.price)
	case x.Qty > pr.qty && !missingOK:
		return 0, errs.Invalid(field("qty"), "%d exceeds the %d lots left in reservation %d", x.Qty, pr.qty, r.id)
	}
	// A settled fill larger than what a (restored) reservation still holds consumes all of it and
	// takes the rest from the free balance.
	fillQty := min(x.Qty, pr.qty)
	rest := pr.qty - fillQty
	// The rest needs no more than the whole did, so this cannot overflow.
	keep, _ := sym.reserveAmount(x.Side, r.price, rest, r.feePPM)
	plan.balance(acct, sym.reservedAsset(x.Side)).reserved -= pr.amount - keep
	pr.qty, pr.amount = rest, keep
	return fillQty, nil
}

// commitExecutions writes a validated plan into the engine. It cannot fail.
func (e *Engine) commitExecutions(plan *executionPlan, execs []Execution) {
	for _, b := range plan.balances.vals {
		*b.acct.balanceRef(b.asset.index) = b.bal
	}
	for _, p := range plan.positions.vals {
		*p.acct.positionRef(p.symbol) = p.pos
	}
	for _, r := range plan.reservations.vals {
		if r.qty == 0 {
			e.dir.remove(r.id)
			r.acct.dropSlot(r.slot)
			continue
		}
		res := &r.acct.reservations[r.slot]
		res.qty, res.amount = r.qty, r.amount
	}
	for _, m := range plan.marks {
		m.sym.mark.Store(m.price)
	}
	// Settlement streams dedupe by position, not by id: nothing per execution is kept.
	for _, x := range execs {
		e.execs[x.ExecID] = x
	}
}

// execField names a field of the i-th execution for errors; it is only formatted on failure paths.
func execField(i int, name string) string { return fmt.Sprintf("executions[%d].%s", i, name) }
