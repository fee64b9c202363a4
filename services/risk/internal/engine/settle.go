package engine

import (
	"fmt"
	"sync"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// # Settlement streams
//
// A matching shard settles its journal with Settle, in journal order: each call carries the next
// part of the stream (trades with both legs, releases), and the engine keeps, per stream, the highest
// journal position applied — the watermark — instead of a set of execution ids. A part applies all or
// nothing in one event, which records the new watermark with the trades, so after a restart the
// watermark is exactly what is durable and a part sent again is skipped, whatever its batching.
//
// A stream is named by its owner (the matching service), shard and epoch; the epoch is new whenever
// the shard's journal starts over, so positions of a lost journal never collide with a new one.

// StreamID names a settlement stream.
type StreamID struct {
	Owner string `json:"owner"`
	Shard uint32 `json:"shard"`
	Epoch uint64 `json:"epoch"`
}

func (s StreamID) String() string { return fmt.Sprintf("%s/%d@%x", s.Owner, s.Shard, s.Epoch) }

func (s StreamID) validate(field string) error {
	if err := validateAccountID(field+".owner", s.Owner); err != nil {
		return err
	}
	if s.Epoch == 0 {
		return errs.Invalid(field+".epoch", "must not be 0")
	}
	return nil
}

// Leg is one side of a trade: the account and the reservation of its order.
type Leg struct {
	Account       string
	ReservationID uint64
}

// Trade is one fill with both legs. The taker pays the fee, at the symbol's current taker rate.
type Trade struct {
	Symbol    string
	Price     int64 // ticks
	Qty       int64 // lots
	TakerSide Side
	Buyer     Leg
	Seller    Leg
	Time      int64 // unix nanoseconds
}

// SettlementItem is one item of a stream: a trade, the release of a reservation (Release != 0), or
// a shrink of one (an order's quantity went down without a fill).
type SettlementItem struct {
	Seq     uint64 // journal position that produced it
	Trade   *Trade
	Release uint64
	Shrink  *Shrink
}

// Shrink frees Qty lots of a reservation (never below zero). Fills and shrinks both subtract, so
// their order within a part does not matter.
type Shrink struct {
	ReservationID uint64
	Qty           int64
}

// SettleBatch is the next part of a stream: every item with After < Seq <= Through.
type SettleBatch struct {
	Stream  StreamID
	After   uint64
	Through uint64
	Items   []SettlementItem
}

// SettleResult reports a Settle call.
type SettleResult struct {
	Seq        uint64 // the event that recorded it; 0 if nothing was new
	Watermark  uint64 // the stream's position after the call
	Applied    int    // items applied (trades and releases)
	Skipped    int    // items at or below the watermark
	Unreserved int    // legs whose reservation was not open, paid from free balance
	Reclaimed  int    // the owner's reservations dropped to pay for such legs (see reclaimOwned)
}

// SettlementRecord is the durable form of a settled part: the executions it produced (two per trade,
// with the fee computed) and the stream position it brings the stream to.
type SettlementRecord struct {
	Stream     StreamID    `json:"stream"`
	Through    uint64      `json:"through"`
	Executions []Execution `json:"executions,omitempty"`
}

// EventSettlement records one settled part of a stream.
const EventSettlement EventKind = "settlement"

// Bounds on what a stream or an owner table may hold, so a caller cannot grow them without limit.
const (
	maxSettleItems = 1 << 14
	maxStreams     = 1 << 16
	maxOwners      = 1 << 16
)

// settlement is the engine's settlement state. streams is guarded by the commit lock; owners by
// ownersMu, because CheckOrder resolves owners without the commit lock.
type settlement struct {
	streams map[StreamID]uint64 // watermark per stream

	ownersMu sync.RWMutex
	owners   map[ownerKey]OwnerRef
	list     []ownerKey // by OwnerRef-1
}

type ownerKey struct {
	name  string
	shard uint32
}

// OwnerRef is a reservation owner (one matching shard) inside the engine; 0 is nobody.
type OwnerRef int32

// Owner returns the engine's handle of the owner (name, shard), registering it on first use.
func (e *Engine) Owner(name string, shard uint32) (OwnerRef, error) {
	k := ownerKey{name, shard}
	st := &e.settle
	st.ownersMu.RLock()
	ref, ok := st.owners[k]
	st.ownersMu.RUnlock()
	if ok {
		return ref, nil
	}
	if err := validateAccountID("owner", name); err != nil {
		return 0, err
	}
	st.ownersMu.Lock()
	defer st.ownersMu.Unlock()
	if ref, ok := st.owners[k]; ok {
		return ref, nil
	}
	if len(st.list) >= maxOwners {
		return 0, errs.New(errs.KindResourceExhausted, "the engine holds the maximum of %d reservation owners", maxOwners)
	}
	if st.owners == nil {
		st.owners = map[ownerKey]OwnerRef{}
	}
	st.list = append(st.list, k)
	ref = OwnerRef(len(st.list))
	st.owners[k] = ref
	return ref, nil
}

func (e *Engine) ownerKey(ref OwnerRef) (ownerKey, bool) {
	e.settle.ownersMu.RLock()
	defer e.settle.ownersMu.RUnlock()
	if ref <= 0 || int(ref) > len(e.settle.list) {
		return ownerKey{}, false
	}
	return e.settle.list[ref-1], true
}

// Watermark returns the highest position of stream applied, 0 for a stream never settled.
func (e *Engine) Watermark(stream StreamID) uint64 {
	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	return e.settle.streams[stream]
}

// StreamWatermarks returns every stream's watermark.
func (e *Engine) StreamWatermarks() map[StreamID]uint64 {
	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	out := make(map[StreamID]uint64, len(e.settle.streams))
	for k, v := range e.settle.streams {
		out[k] = v
	}
	return out
}

// Settle applies the next part of a settlement stream. Items at or below the stream's watermark are
// skipped; the rest apply all or nothing: for each trade the buyer pays price × qty in quote and
// receives the base, the seller the reverse, and the taker pays price × qty × the symbol's current
// taker rate (truncated) to the fee account. Each leg consumes its order's reservation when it is
// open; when it is not (risk restarted since the order was checked) the leg's funds come from the
// free balance, as the part's releases and shrinks leave it, and what that lacks from the stream
// owner's other reservations of the account (reclaimOwned; the result counts them). Releases free
// what their reservations still hold; ids not open are skipped.
//
// It fails, changing nothing, when b.After is above the watermark (the stream has a gap: risk has
// not seen what came before), when an item is malformed or out of order, or when the trades cannot
// be applied (unknown account or symbol, a balance that would go below what it must keep). Such a
// refusal is permanent: the caller must not drop the part, but stop and let an operator fix the
// cause, then send it again.
func (e *Engine) Settle(b SettleBatch, persist PersistFunc) (SettleResult, error) {
	if err := b.Stream.validate("stream"); err != nil {
		return SettleResult{}, err
	}
	switch {
	case b.Through < b.After:
		return SettleResult{}, errs.Invalid("through", "must not be below after")
	case len(b.Items) > maxSettleItems:
		return SettleResult{}, errs.Invalid("items", "at most %d per call", maxSettleItems)
	}
	prev := b.After
	for i, it := range b.Items {
		switch {
		case it.Seq <= b.After || it.Seq > b.Through:
			return SettleResult{}, errs.Invalid(fmt.Sprintf("items[%d].seq", i), "%d is outside (%d, %d]", it.Seq, b.After, b.Through)
		case it.Seq < prev:
			return SettleResult{}, errs.Invalid(fmt.Sprintf("items[%d].seq", i), "must not decrease")
		case countSet(it.Trade != nil, it.Release != 0, it.Shrink != nil) != 1:
			return SettleResult{}, errs.Invalid(fmt.Sprintf("items[%d]", i), "must be one of a trade, a release and a shrink")
		case it.Shrink != nil && (it.Shrink.ReservationID == 0 || it.Shrink.Qty <= 0):
			return SettleResult{}, errs.Invalid(fmt.Sprintf("items[%d].shrink", i), "needs a reservation id and a positive quantity")
		}
		prev = it.Seq
	}
	var owner OwnerRef
	if len(b.Items) > 0 {
		owner, _ = e.Owner(b.Stream.Owner, b.Stream.Shard) // 0 (nobody's reservations reclaimed) if the table is full
	}

	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	wm := e.settle.streams[b.Stream]
	res := SettleResult{Watermark: wm}
	switch {
	case b.After > wm:
		return res, errs.New(errs.KindFailedPrecondition,
			"stream %s: a gap: this part follows position %d but risk has applied up to %d", b.Stream, b.After, wm)
	case b.Through <= wm:
		res.Skipped = len(b.Items)
		return res, nil
	}
	if _, known := e.settle.streams[b.Stream]; !known && len(e.settle.streams) >= maxStreams {
		return res, errs.New(errs.KindResourceExhausted, "the engine holds the maximum of %d settlement streams", maxStreams)
	}

	rec := SettlementRecord{Stream: b.Stream, Through: b.Through}
	var frees []SettlementItem // releases and shrinks, in order
	cat := e.catalog.Load()
	for i, it := range b.Items {
		if it.Seq <= wm {
			res.Skipped++
			continue
		}
		res.Applied++
		if it.Trade == nil {
			frees = append(frees, it)
			continue
		}
		buy, sell, err := tradeExecutions(cat, it.Trade, i)
		if err != nil {
			return res, err
		}
		rec.Executions = append(rec.Executions, buy, sell)
	}
	plan, seq, err := e.applySettlement(&rec, &settlePart{frees: frees, owner: owner}, persist, planSettle)
	if err != nil {
		return SettleResult{Watermark: wm}, err
	}
	res.Seq, res.Watermark = seq, b.Through
	if plan != nil {
		res.Unreserved, res.Reclaimed = plan.unreserved, plan.reclaimed
	}
	// Releases follow the trades they close; reservations are not durable, so neither are they.
	// Ids not open (already released, filled, or lost in a restart) are skipped.
	for _, it := range frees {
		if it.Release != 0 {
			_ = e.Release(it.Release)
		} else {
			e.shrink(it.Shrink.ReservationID, it.Shrink.Qty)
		}
	}
	return res, nil
}

func countSet(flags ...bool) int {
	n := 0
	for _, f := range flags {
		if f {
			n++
		}
	}
	return n
}

// shrink frees qty lots of reservation id, keeping exactly what the rest needs at its price.
func (e *Engine) shrink(id uint64, qty int64) {
	loc, ok := e.dir.get(id)
	if !ok {
		return
	}
	acct := e.accounts.at(loc.account())
	if acct == nil {
		return
	}
	acct.mu.Lock()
	defer acct.mu.Unlock()
	slot := loc.slot()
	if int(slot) >= len(acct.reservations) || !acct.reservations[slot].live || acct.reservations[slot].id != id {
		return
	}
	r := &acct.reservations[slot]
	rest := max(r.qty-qty, 0)
	if rest == 0 {
		if _, ok := e.dir.remove(id); ok {
			acct.releaseSlot(slot)
		}
		return
	}
	keep, _ := r.symbol.reserveAmount(r.side, r.price, rest, r.feePPM) // the rest needs no more than the whole
	acct.balanceRef(r.symbol.reservedAsset(r.side).index).reserved -= r.amount - keep
	p := acct.positionRef(r.symbol.index)
	if r.side == SideBuy {
		p.openBuy -= r.qty - rest
	} else {
		p.openSell -= r.qty - rest
	}
	r.qty, r.amount = rest, keep
}

// tradeExecutions turns a trade into its two executions, the taker's carrying the fee.
func tradeExecutions(cat *catalog, t *Trade, i int) (buy, sell Execution, err error) {
	field := func(name string) string { return fmt.Sprintf("items[%d].trade.%s", i, name) }
	sym := cat.symbols[t.Symbol]
	switch {
	case sym == nil:
		return buy, sell, errs.New(errs.KindNotFound, "%s: unknown symbol %q", field("symbol"), t.Symbol)
	case !t.TakerSide.valid():
		return buy, sell, errs.Invalid(field("taker_side"), "must be buy or sell")
	case t.Price <= 0:
		return buy, sell, errs.Invalid(field("price"), "must be positive")
	case t.Qty <= 0:
		return buy, sell, errs.Invalid(field("quantity"), "must be positive")
	}
	notional, ok := sym.notional(t.Price, t.Qty)
	if !ok {
		return buy, sell, errs.Invalid(field("quantity"), "notional overflows")
	}
	fee, ok := mulDivFloor(notional, sym.spec.TakerFeePPM, ppm)
	if !ok {
		return buy, sell, errs.Invalid(field("quantity"), "fee overflows")
	}
	buy = Execution{ReservationID: t.Buyer.ReservationID, Account: t.Buyer.Account, Symbol: t.Symbol, Side: SideBuy,
		Price: t.Price, Qty: t.Qty, Time: t.Time}
	sell = Execution{ReservationID: t.Seller.ReservationID, Account: t.Seller.Account, Symbol: t.Symbol, Side: SideSell,
		Price: t.Price, Qty: t.Qty, Time: t.Time}
	if t.TakerSide == SideBuy {
		buy.Fee = fee
	} else {
		sell.Fee = fee
	}
	return buy, sell, nil
}

// applySettlement validates and commits one settled part, live (planSettle) or in replay. The
// caller holds the commit lock and applies the part's frees (releases and shrinks) after it; the
// check of the balances counts what they will free. The plan is nil for a part without trades.
func (e *Engine) applySettlement(rec *SettlementRecord, part *settlePart, persist PersistFunc, mode planMode) (*executionPlan, uint64, error) {
	if mode == planReplay {
		if err := rec.Stream.validate("settlement.stream"); err != nil {
			return nil, 0, err
		}
		if wm := e.settle.streams[rec.Stream]; rec.Through <= wm {
			return nil, 0, errs.New(errs.KindFailedPrecondition, "stream %s settles position %d again (at %d)", rec.Stream, rec.Through, wm)
		}
	}
	advance := func() {
		if e.settle.streams == nil {
			e.settle.streams = map[StreamID]uint64{}
		}
		e.settle.streams[rec.Stream] = rec.Through
	}
	ev := Event{Kind: EventSettlement, Settlement: rec}
	if len(rec.Executions) == 0 {
		if err := e.commit(&ev, persist, advance); err != nil {
			return nil, 0, err
		}
		return nil, ev.Seq, nil
	}
	at := make([]int, len(rec.Executions))
	accts := make([]*account, 0, len(rec.Executions)+1)
	accts = append(accts, e.feeAccount)
	byID := make([]*account, len(rec.Executions))
	for i, x := range rec.Executions {
		at[i] = i
		if byID[i] = e.accounts.lookup(x.Account); byID[i] == nil {
			return nil, 0, errs.New(errs.KindNotFound, "%s: unknown account %q", execField(i, "account"), x.Account)
		}
		accts = append(accts, byID[i])
	}
	unlock := lockAccounts(accts)
	defer unlock()
	plan, err := e.planExecutions(rec.Executions, at, byID, mode, part)
	if err != nil {
		return nil, 0, err
	}
	if err := e.commit(&ev, persist, func() { e.commitExecutions(plan, nil); advance() }); err != nil {
		return nil, 0, err
	}
	return plan, ev.Seq, nil
}
