// Package book is a single-symbol limit order book with price-time
// priority, in integers: prices are int64 ticks and quantities int64 lots.
//
// # Calling it
//
// A Book is not safe for concurrent use: the caller serialises every
// call, for example by owning the book from one goroutine. It never reads
// a clock, a random source or a map in iteration order, so the same
// sequence of commands on the same starting state always produces the
// same events, byte for byte. A journal of commands is therefore enough
// to rebuild a book.
//
//	b := book.New(book.Instrument{MinQty: 1, MaxQty: 1_000_000, MaxPrice: 10_000_000})
//	var events []book.Event // owned by the caller, reused for every command
//	events = b.Submit(events[:0], book.NewOrder{ID: 1, Account: 7, Side: book.Buy, Price: 100, Qty: 5})
//	for _, e := range events { ... }
//
// Commands, each appending its outcome to dst and returning the extended
// slice, in the style of strconv.AppendInt:
//
//   - Submit(dst, NewOrder) enters an order (limit, market, stop,
//     stop-limit; GTC, IOC, FOK, GTD, DAY; post-only; iceberg).
//   - Cancel(dst, id) and CancelAll(dst, account) cancel open orders.
//   - Amend(dst, Amend) changes price, quantity or trigger price.
//   - Expire(dst, now) cancels GTD/DAY orders whose ExpireAt <= now. Call
//     it before each command, or on a timer, with the service's time:
//     the book does not expire orders by itself, so expiry is itself a
//     journaled command.
//
// The book only appends to dst, so once dst has grown to the largest
// batch of events a command produces, commands stop allocating. The
// returned slice belongs to the caller; the book keeps no reference to it.
//
// Every command emits at least one event unless it had nothing to do
// (CancelAll of an account without orders, Expire with nothing due). A
// command that changes nothing emits exactly one EventRejected with a
// Reason; commands never panic on bad input. Events carry a sequence
// number that starts at 1 and grows by one per event over the book's
// life (it survives Snapshot/Restore). See EventKind for the fields of
// each event. Orders are accepted (EventAccepted) before they trade;
// after acceptance, anything that closes an order without a fill is an
// EventCancelled with a Reason. L2 changes are reported as EventLevel
// with the new visible total of the level, at most once per level for
// each stretch of a command that touches it.
//
// # Semantics worth knowing
//
//   - Market orders never rest: the unfilled part is cancelled
//     (CancelMarketRemainder). A market order that meets an empty
//     opposite side is rejected (RejectNoLiquidity). Of the TIFs only FOK
//     changes how they execute; on a Stop order GTD/DAY bound the wait
//     for the trigger (and, as everywhere, need ExpireAt > Now). A Stop
//     may carry a Price, its protection: once triggered it trades at
//     that price or better and the rest is cancelled, whatever its TIF.
//   - FOK checks fillability first (hidden iceberg quantity counts; a
//     self-trade that the STP mode would not skip makes it unfillable)
//     and is rejected untouched when it cannot fill.
//   - PostOnly orders that would cross are rejected (or cancelled, when
//     the cross appears on trigger or amend); nothing executes or rests.
//   - Iceberg orders (DisplayQty > 0) show DisplayQty; when the shown
//     slice is filled the order shows a new slice at the back of its
//     level.
//   - Stops trigger on the last trade price: buy stops when last >=
//     trigger, sell stops when last <= trigger. Triggering is checked
//     after every trade; triggered stops queue in trigger order (buy
//     stops first, lowest trigger first, then sell stops, highest trigger
//     first, FIFO within a price) and execute one by one after the
//     current taker finishes; their trades can trigger more stops, which
//     join the back of the queue. A stop whose trigger is already reached
//     when it is submitted triggers at once. Before any trade there is no
//     last price and nothing triggers.
//   - Amend keeps time priority only for a quantity decrease at the same
//     price. A quantity increase moves the order to the back of its
//     level; a price change re-enters it, so it may trade. An amend that
//     leaves no open quantity (Qty <= Filled) is rejected with
//     RejectAmendQtyTooLow and the order is unchanged; use Cancel.
//   - Self-trade prevention follows the taker's STPMode and only applies
//     when taker and maker have the same Account.
//
// # Queries
//
// BestBid, BestAsk, AppendDepth (L2 into a caller buffer), Orders and
// StopOrders (L3 in priority order, as iter.Seq), Order (by id),
// AccountOrders (acceptance order; AccountOrdersAfter resumes after an
// open order), AccountLen, LastPrice, Len, Seq. Iterators must not be used across
// commands.
//
// # Snapshots
//
// AppendSnapshot writes a canonical binary image of the book (orders in
// priority order plus sequence number and last price); two books with
// the same open orders and history have byte-identical snapshots.
// Restore loads one into a book, reusing its memory.
package book

// Book is a limit order book for one instrument. The zero value is not
// usable; call New.
type Book struct {
	inst Instrument
	kind indexKind

	seq     uint64 // last event sequence number handed out
	last    int64  // last trade price
	hasLast bool

	orders     []order // pool; index 0 is the nil reference
	freeOrders orderRef
	levels     []level // pool; index 0 is the nil reference
	freeLevels levelRef

	sides    [2]ladderSide // resting orders, by Side.index()
	stops    [2]ladderSide // pending stops, by Side.index()
	ids      idTable
	accounts hashTable[accountList]
	expiry   []expiryEntry

	// Triggered stops waiting to execute, linked through order.next.
	trigHead, trigTail orderRef

	out     []Event    // destination of the running command
	scratch []orderRef // reused by Restore
}

// New returns an empty book validating orders against inst.
func New(inst Instrument) *Book { return newBook(inst, indexLadder) }

func newBook(inst Instrument, kind indexKind) *Book {
	b := &Book{inst: inst.normalized(), kind: kind}
	b.orders = make([]order, 1, 1024)
	b.levels = make([]level, 1, 256)
	b.sides[Buy.index()] = ladderSide{index: newIndex(kind), higherIsBetter: true}
	b.sides[Sell.index()] = ladderSide{index: newIndex(kind), higherIsBetter: false}
	// A buy stop with a lower trigger fires first, a sell stop with a
	// higher one: the stop books are ordered like the opposite side.
	b.stops[Buy.index()] = ladderSide{index: newIndex(kind), higherIsBetter: false}
	b.stops[Sell.index()] = ladderSide{index: newIndex(kind), higherIsBetter: true}
	return b
}

// Instrument returns the limits the book validates against, with
// defaults applied.
func (b *Book) Instrument() Instrument { return b.inst }

func (b *Book) side(s Side) *ladderSide     { return &b.sides[s.index()] }
func (b *Book) stopSide(s Side) *ladderSide { return &b.stops[s.index()] }

// begin and end bracket every command: events are appended to the
// caller's slice, and the book drops its reference when done.
func (b *Book) begin(dst []Event) { b.out = dst }

func (b *Book) end() []Event {
	dst := b.out
	b.out = nil
	return dst
}

// Submit enters a new order and appends the resulting events to dst.
func (b *Book) Submit(dst []Event, cmd NewOrder) []Event {
	b.begin(dst)
	b.submit(&cmd)
	return b.end()
}

// Cancel cancels an open order (resting or waiting for its trigger).
func (b *Book) Cancel(dst []Event, id uint64) []Event {
	b.begin(dst)
	if r := b.ids.get(id); r != 0 {
		b.cancelOpen(r, CancelUser)
	} else {
		b.emitReject(id, 0, 0, RejectUnknownOrder)
	}
	return b.end()
}

// CancelAll cancels every open order of account, oldest first. It emits
// nothing when the account has no open orders.
func (b *Book) CancelAll(dst []Event, account uint32) []Event {
	b.begin(dst)
	key := accountKey(account)
	for {
		l := b.accounts.find(key)
		if l == nil {
			break
		}
		b.cancelOpen(l.head, CancelUser)
	}
	return b.end()
}

// Expire cancels, with CancelExpired, every GTD/DAY order whose ExpireAt
// is <= now, earliest expiry first. It costs one comparison when nothing
// is due.
func (b *Book) Expire(dst []Event, now int64) []Event {
	b.begin(dst)
	for len(b.expiry) > 0 && b.expiry[0].at <= now {
		b.cancelOpen(b.expiry[0].ref, CancelExpired)
	}
	return b.end()
}

// Amend changes an open order; see the package documentation for the
// priority rules.
func (b *Book) Amend(dst []Event, cmd Amend) []Event {
	b.begin(dst)
	b.amend(&cmd)
	return b.end()
}

func (b *Book) submit(cmd *NewOrder) {
	if reason := b.validate(cmd); reason != ReasonNone {
		b.emitReject(cmd.ID, cmd.Account, cmd.Side, reason)
		return
	}
	if b.ids.get(cmd.ID) != 0 {
		b.emitReject(cmd.ID, cmd.Account, cmd.Side, RejectDuplicateOrderID)
		return
	}
	r := b.allocOrder()
	o := &b.orders[r]
	o.id = cmd.ID
	o.account = cmd.Account
	o.side = cmd.Side
	o.typ = cmd.Type
	o.tif = cmd.TIF
	o.stp = cmd.STP
	o.postOnly = cmd.PostOnly
	if cmd.Type.hasPrice() {
		o.price = cmd.Price
	}
	if cmd.Type.isStop() {
		o.trigger = cmd.TriggerPrice
	}
	o.qty = cmd.Qty
	o.remaining = cmd.Qty
	o.display = cmd.DisplayQty
	if cmd.TIF.expires() {
		o.expireAt = cmd.ExpireAt
	}

	if o.typ.isStop() {
		b.accept(r)
		b.register(r)
		b.armStop(r)
		b.runTriggered()
		return
	}
	if reason := b.precheck(r); reason != ReasonNone {
		b.release(r)
		b.emitReject(cmd.ID, cmd.Account, cmd.Side, reason)
		return
	}
	b.accept(r)
	b.execute(r)
	b.runTriggered()
}

func (b *Book) accept(r orderRef) {
	o := &b.orders[r]
	b.emitOrder(EventAccepted, o, ReasonNone, o.price, o.qty)
	o.acceptSeq = b.seq
}

// cancelOpen cancels an open order wherever it lives and reports it.
func (b *Book) cancelOpen(r orderRef, reason Reason) {
	o := &b.orders[r]
	switch o.loc {
	case locBook:
		s := b.side(o.side)
		lr := o.level
		b.unlink(s, r)
		b.closeRemaining(r, reason)
		l := &b.levels[lr]
		b.emitLevel(o.side, l.price, l.visible)
		b.dropLevelIfEmpty(s, lr)
	case locStop:
		s := b.stopSide(o.side)
		lr := o.level
		b.unlink(s, r)
		b.dropLevelIfEmpty(s, lr)
		b.closeRemaining(r, reason)
	default:
		// Orders in flight or in the trigger queue are not reachable
		// between commands; nothing to unlink.
		b.closeRemaining(r, reason)
	}
	b.release(r)
}
