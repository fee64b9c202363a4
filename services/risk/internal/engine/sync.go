package engine

import (
	"fmt"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// # Re-synchronising reservations with their owner
//
// Reservations are not durable: a restart loses them, and a check whose answer never reached the
// owner leaves one nobody will release. The owner (a matching shard) therefore re-syncs: it tells
// the engine which of its orders rest, as of the stream position the engine has settled, and the
// engine makes its reservations exactly that set.
//
// Every reservation of an owner carries the session (owner process) and generation of the check
// that made it. The owner bumps its generation to g+1 before a sync of generation g and waits until
// no check of generation <= g is still in flight: every reservation made by an older check then
// belongs to an order that is in the owner's journal or to none. A sync may be sent in chunks; each
// upserts the reservations it names (tagging them g+1), and the final chunk drops every reservation
// of the owner still tagged with another session or a generation <= g. Checks of generation g+1,
// which the owner may send meanwhile, are never touched. A sync that fails part way is sent again
// whole: upserts repeat harmlessly.

// SyncBatch is one chunk of an owner's re-sync.
type SyncBatch struct {
	Stream       StreamID // owner = (Stream.Owner, Stream.Shard)
	Watermark    uint64   // must equal the stream's watermark
	Session      uint64
	Generation   uint64
	Reservations []RestoredReservation
	Final        bool
}

// SyncResult reports one chunk.
type SyncResult struct {
	Restored  int
	Dropped   int      // final chunk only
	Uncovered []uint64 // named reservations the free balance could not cover; not created
}

// maxSyncChunk bounds one chunk.
const maxSyncChunk = 1 << 14

// SyncReservations applies one chunk of a re-sync (see above). It is allowed at any time. It is
// refused with KindFailedPrecondition, changing nothing, when the stream's watermark differs from
// b.Watermark: the owner's open orders would then not match what the engine has settled (a fill the
// engine has not applied still holds its lots in the order, or one it applied no longer does).
//
// A named reservation that is open is set to exactly what its remaining quantity needs at its own
// price and fee rate, releasing any excess; one that is not open is created at the symbol's current
// fee rate, if the free balance covers it (otherwise it is reported in Uncovered). Nothing here is
// an event: reservations are rebuilt from the owner, not the log.
func (e *Engine) SyncReservations(b SyncBatch) (SyncResult, error) {
	var res SyncResult
	if err := b.Stream.validate("stream"); err != nil {
		return res, err
	}
	if len(b.Reservations) > maxSyncChunk {
		return res, errs.Invalid("reservations", "at most %d per call", maxSyncChunk)
	}
	owner, err := e.Owner(b.Stream.Owner, b.Stream.Shard)
	if err != nil {
		return res, err
	}
	type target struct {
		r      RestoredReservation
		acct   *account
		sym    *symbol
		amount int64
	}
	targets := make([]target, len(b.Reservations))
	cat := e.catalog.Load()
	for i, r := range b.Reservations {
		field := func(name string) string { return fmt.Sprintf("reservations[%d].%s", i, name) }
		switch {
		case r.ID == 0 || r.ID > maxReservationID:
			return res, errs.Invalid(field("reservation_id"), "must be between 1 and %d", uint64(maxReservationID))
		case !r.Side.valid():
			return res, errs.Invalid(field("side"), "must be buy or sell")
		case r.Price <= 0:
			return res, errs.Invalid(field("price"), "must be positive")
		case r.Qty <= 0:
			return res, errs.Invalid(field("quantity"), "must be positive")
		}
		acct, err := e.lookupAccount(field("account_id"), r.Account)
		if err != nil {
			return res, err
		}
		sym := cat.symbols[r.Symbol]
		if sym == nil {
			return res, errs.New(errs.KindNotFound, "%s: unknown symbol %q", field("symbol"), r.Symbol)
		}
		amount, ok := sym.reserveAmount(r.Side, r.Price, r.Qty, sym.spec.TakerFeePPM)
		if !ok {
			return res, errs.Invalid(field("quantity"), "reserved amount would overflow")
		}
		targets[i] = target{r, acct, sym, amount}
	}

	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	if wm := e.settle.streams[b.Stream]; wm != b.Watermark {
		return res, errs.New(errs.KindFailedPrecondition,
			"stream %s: risk has settled up to position %d, the sync is as of %d", b.Stream, wm, b.Watermark)
	}
	e.markReservationsUsed()
	tag := reservation{owner: int32(owner), session: b.Session, generation: b.Generation + 1}
	for _, t := range targets {
		if e.upsertOwned(t.acct, t.sym, t.r, t.amount, tag) {
			res.Restored++
		} else {
			res.Uncovered = append(res.Uncovered, t.r.ID)
		}
	}
	if b.Final {
		res.Dropped = e.dropOwned(owner, b.Session, b.Generation)
	}
	return res, nil
}

// upsertOwned makes reservation r.ID hold exactly what r's remaining quantity needs and tags it. It
// reports false if that cannot be done: the free balance does not cover it, or the id is open for
// another order.
func (e *Engine) upsertOwned(acct *account, sym *symbol, r RestoredReservation, amount int64, tag reservation) bool {
	acct.mu.Lock()
	defer acct.mu.Unlock()
	asset := sym.reservedAsset(r.Side).index
	if loc, open := e.dir.get(r.ID); open {
		slot := loc.slot()
		if loc.account() != acct.index || int(slot) >= len(acct.reservations) {
			return false
		}
		cur := &acct.reservations[slot]
		if !cur.live || cur.id != r.ID || cur.symbol != sym || cur.side != r.Side {
			return false
		}
		// Keep the reservation's own fee rate: its fills are charged against it.
		need, ok := sym.reserveAmount(r.Side, cur.price, r.Qty, cur.feePPM)
		if !ok {
			return false
		}
		bal := acct.balanceRef(asset)
		if delta := need - cur.amount; delta > 0 && bal.available() < delta {
			return false
		}
		bal.reserved += need - cur.amount
		p := acct.positionRef(sym.index)
		if r.Side == SideBuy {
			p.openBuy += r.Qty - cur.qty
		} else {
			p.openSell += r.Qty - cur.qty
		}
		cur.qty, cur.amount = r.Qty, need
		cur.owner, cur.session, cur.generation = tag.owner, tag.session, tag.generation
		return true
	}
	if acct.balanceOf(asset).available() < amount {
		return false
	}
	slot := acct.open(reservation{id: r.ID, symbol: sym, side: r.Side, price: r.Price, qty: r.Qty, amount: amount,
		feePPM: sym.spec.TakerFeePPM, owner: tag.owner, session: tag.session, generation: tag.generation})
	if !e.dir.insert(r.ID, locate(acct.index, slot)) {
		acct.releaseSlot(slot)
		return false
	}
	// New ids must come from counter values above the restored one.
	for counter := r.ID >> idShardBits; ; {
		cur := e.nextID.Load()
		if cur >= counter || e.nextID.CompareAndSwap(cur, counter) {
			return true
		}
	}
}

// dropOwned releases every reservation of owner made by another session or by a generation <=
// generation, and returns how many.
func (e *Engine) dropOwned(owner OwnerRef, session, generation uint64) int {
	dropped := 0
	for _, acct := range e.accounts.all() {
		acct.mu.Lock()
		for slot := range acct.reservations {
			r := &acct.reservations[slot]
			if !r.live || r.owner != int32(owner) || (r.session == session && r.generation > generation) {
				continue
			}
			// A concurrent Release that took the id out of the directory first frees it itself.
			if _, ok := e.dir.remove(r.id); ok {
				acct.releaseSlot(int32(slot))
				dropped++
			}
		}
		acct.mu.Unlock()
	}
	return dropped
}
