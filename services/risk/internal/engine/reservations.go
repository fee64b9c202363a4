package engine

import (
	"sync"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// reservation is funds locked for one open order. Records live in their account's slab and are
// guarded by the account lock.
type reservation struct {
	id     uint64
	symbol *symbol
	side   Side
	price  int64 // limit or protection price, ticks: no fill may be worse
	qty    int64 // lots still unfilled
	amount int64 // locked in symbol.reservedAsset(side) for those lots
	feePPM int64 // fee rate the reservation was made at, so later fee changes cannot unbalance it
	live   bool
	// owner is the ownerIndex+1 of the matching shard that restores this reservation (0: none),
	// with the session and re-sync generation of the check that made it (see sync.go).
	owner      int32
	session    uint64
	generation uint64
}

// allocSlot returns a free slot of the account's slab, growing it only when every slot is in use.
func (a *account) allocSlot() int32 {
	if n := len(a.free); n > 0 {
		slot := a.free[n-1]
		a.free = a.free[:n-1]
		return slot
	}
	a.reservations = growTo(a.reservations, len(a.reservations)+1)
	return int32(len(a.reservations) - 1)
}

// open books r into a fresh slot: the amount moves to reserved and the lots to the open side.
func (a *account) open(r reservation) int32 {
	slot := a.allocSlot()
	r.live = true
	a.reservations[slot] = r
	a.balanceRef(r.symbol.reservedAsset(r.side).index).reserved += r.amount
	p := a.positionRef(r.symbol.index)
	if r.side == SideBuy {
		p.openBuy += r.qty
	} else {
		p.openSell += r.qty
	}
	return slot
}

// releaseSlot unlocks whatever the reservation in slot still holds and frees the slot.
func (a *account) releaseSlot(slot int32) {
	r := &a.reservations[slot]
	a.balanceRef(r.symbol.reservedAsset(r.side).index).reserved -= r.amount
	p := a.positionRef(r.symbol.index)
	if r.side == SideBuy {
		p.openBuy -= r.qty
	} else {
		p.openSell -= r.qty
	}
	a.dropSlot(slot)
}

// dropSlot frees slot without touching balances, for a reservation whose amount is already zero.
func (a *account) dropSlot(slot int32) {
	a.reservations[slot] = reservation{}
	a.free = growTo(a.free, len(a.free)+1)
	a.free[len(a.free)-1] = slot
}

// idBlock is how many reservation ids an account takes from the engine's counter at a time.
const idBlock = 256

// An id is a counter value shifted left by idShardBits, with the account's directory shard in the
// low bits: all of an account's reservations then live in one directory shard, whose cache lines
// stay with the core serving that account instead of bouncing between cores on every order.
// With 1024 shards two accounts share one only if their indexes are equal modulo 1024, and the
// counter keeps 2^52 values, more than any engine will use.
const idShardBits = 10 // log2(directoryShards)

// maxReservationID bounds restored ids and the floor, so the counter never nears the top of the id
// space where shifting it would wrap.
const maxReservationID = 1 << 62

// takeID hands out the account's next reservation id. The caller holds acct.mu.
func (e *Engine) takeID(acct *account) uint64 {
	if acct.idNext == acct.idEnd {
		e.serving.Store(true)
		last := e.nextID.Add(idBlock)
		if last >= e.ids.soft.Load() {
			e.ids.admit(last) // near or past the durably reserved ids
		}
		end := last + 1
		acct.idNext, acct.idEnd = end-idBlock, end
	}
	counter := acct.idNext
	acct.idNext++
	return counter<<idShardBits | uint64(acct.index)%directoryShards
}

// location packs where a reservation lives: account index in the high half, slot in the low half.
type location uint64

func locate(accountIndex uint32, slot int32) location {
	return location(uint64(accountIndex)<<32 | uint64(uint32(slot)))
}

func (l location) account() uint32 { return uint32(l >> 32) }
func (l location) slot() int32     { return int32(uint32(l)) }

// directory finds a reservation from its id alone (Release carries nothing else). It is sharded by
// the low bits of the id, which takeID sets to the account's shard, so accounts on different shards
// never share a lock or a cache line here.
const directoryShards = 1 << idShardBits

type directory struct {
	shards [directoryShards]directoryShard
}

type directoryShard struct {
	mu sync.Mutex
	t  idTable
	_  [56]byte // 128 bytes in all: neighbouring shards stay apart, past adjacent-line prefetch
}

func (d *directory) shard(id uint64) *directoryShard { return &d.shards[id%directoryShards] }

func (d *directory) insert(id uint64, loc location) bool {
	s := d.shard(id)
	s.mu.Lock()
	ok := s.t.insert(id, uint64(loc))
	s.mu.Unlock()
	return ok
}

func (d *directory) get(id uint64) (location, bool) {
	s := d.shard(id)
	s.mu.Lock()
	v, ok := s.t.get(id)
	s.mu.Unlock()
	return location(v), ok
}

func (d *directory) remove(id uint64) (location, bool) {
	s := d.shard(id)
	s.mu.Lock()
	v, ok := s.t.remove(id)
	s.mu.Unlock()
	return location(v), ok
}

// Release frees what a reservation still holds, when its order is cancelled or expires. Releasing an
// id that is unknown, already released or completely filled is a KindNotFound error, so a double
// cancel is visible but harmless.
func (e *Engine) Release(id uint64) error {
	// Taking the id out of the directory first makes the release exclusive: a concurrent fill or
	// second release no longer finds it.
	loc, ok := e.dir.remove(id)
	if !ok {
		return errs.New(errs.KindNotFound, "reservation %d is not open", id)
	}
	acct := e.accounts.at(loc.account())
	if acct == nil {
		return errs.New(errs.KindInternal, "reservation %d points at a missing account", id)
	}
	acct.mu.Lock()
	defer acct.mu.Unlock()
	slot := loc.slot()
	if int(slot) >= len(acct.reservations) || !acct.reservations[slot].live || acct.reservations[slot].id != id {
		// A fill completed it between the directory removal and taking the lock.
		return errs.New(errs.KindNotFound, "reservation %d is not open", id)
	}
	acct.releaseSlot(slot)
	return nil
}

// RestoredReservation is an open reservation to put back after a restart: the remaining quantity of
// a resting order and the id it was given.
type RestoredReservation struct {
	ID      uint64
	Account string
	Symbol  string
	Side    Side
	Price   int64 // limit or protection price, ticks
	Qty     int64 // remaining lots
}

// RestoreReservation recreates an open reservation with its original id, after the events have been
// replayed and before traffic resumes. It reserves the amount the engine would reserve for the
// remaining quantity at the symbol's current fee, without re-running risk checks (the order already
// rests), and refuses if the available balance does not cover it. New ids are then issued above the
// largest restored one. Restoring is refused once CheckOrder has accepted an order.
func (e *Engine) RestoreReservation(r RestoredReservation) error {
	e.markReservationsUsed()
	if e.serving.Load() {
		// Accounts already hold blocks of ids that a restored id could fall into.
		return errs.New(errs.KindFailedPrecondition, "reservations can only be restored before orders are checked")
	}
	switch {
	case r.ID == 0 || r.ID > maxReservationID:
		return errs.Invalid("reservation.id", "must be between 1 and %d", uint64(maxReservationID))
	case !r.Side.valid():
		return errs.Invalid("reservation.side", "must be buy or sell")
	case r.Price <= 0:
		return errs.Invalid("reservation.price", "must be positive")
	case r.Qty <= 0:
		return errs.Invalid("reservation.qty", "must be positive")
	}
	acct, err := e.lookupAccount("reservation.account", r.Account)
	if err != nil {
		return err
	}
	sym := e.catalog.Load().symbols[r.Symbol]
	if sym == nil {
		return errs.New(errs.KindNotFound, "reservation.symbol: unknown symbol %q", r.Symbol)
	}
	amount, ok := sym.reserveAmount(r.Side, r.Price, r.Qty, sym.spec.TakerFeePPM)
	if !ok {
		return errs.Invalid("reservation.qty", "reserved amount would overflow")
	}
	acct.mu.Lock()
	defer acct.mu.Unlock()
	if _, taken := e.dir.get(r.ID); taken {
		return errs.New(errs.KindAlreadyExists, "reservation %d is already open", r.ID)
	}
	if acct.balanceOf(sym.reservedAsset(r.Side).index).available() < amount {
		return errs.New(errs.KindFailedPrecondition, "account %q cannot cover reservation %d", r.Account, r.ID)
	}
	slot := acct.open(reservation{id: r.ID, symbol: sym, side: r.Side, price: r.Price, qty: r.Qty, amount: amount, feePPM: sym.spec.TakerFeePPM})
	if !e.dir.insert(r.ID, locate(acct.index, slot)) {
		acct.releaseSlot(slot)
		return errs.New(errs.KindAlreadyExists, "reservation %d is already open", r.ID)
	}
	// New ids must come from counter values above the restored one.
	for counter := r.ID >> idShardBits; ; {
		cur := e.nextID.Load()
		if cur >= counter || e.nextID.CompareAndSwap(cur, counter) {
			return nil
		}
	}
}

// markReservationsUsed records that reservations exist, after which Apply is refused: replayed fills
// do not consume reservations, so replaying into a live engine would unbalance them.
func (e *Engine) markReservationsUsed() {
	if !e.reservationsUsed.Load() {
		e.reservationsUsed.Store(true)
	}
}
