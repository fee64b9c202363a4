package engine

import (
	"math"
	"sync"
	"sync/atomic"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// Reservation ids must never be reused, not even across restarts: a release or fill that names an
// id of a previous incarnation must not find a reservation of this one. Ids are not events (they
// change at order-entry rate), so the store instead reserves ranges of ids durably: incarnation k
// starts above the limit k−1 had reserved (Config.ReservationIDFloor) and may issue ids up to the
// limit it has reserved itself (Config.ReservationIDLimit). When the counter nears the limit the
// engine asks for more (ReservationIDsLow); whoever owns the store reserves a further range and
// calls ExtendReservationIDs. Should the counter reach the limit first, takeID waits for the
// extension rather than issue an id that a restart could hand out again.

// idGate bounds the id counter by the durably reserved limit. The fast path of takeID reads soft
// once per block of idBlock ids; everything else happens at most once per reserved range.
type idGate struct {
	soft atomic.Uint64 // counter value from which takeID asks for a further range (≤ hard)

	mu   sync.Mutex
	cond sync.Cond
	hard uint64 // counter values must stay below it; math.MaxUint64 when unbounded
	low  chan struct{}
}

func (g *idGate) init(limit, floorCounter uint64) {
	g.cond.L = &g.mu
	g.low = make(chan struct{}, 1)
	if limit == 0 {
		g.hard = math.MaxUint64
		g.soft.Store(math.MaxUint64)
		return
	}
	g.hard = limit >> idShardBits
	g.soft.Store(floorCounter + (g.hard-floorCounter)/2)
}

// ReservationIDsLow is signalled (without blocking the engine: the channel holds one signal) when
// the ids handed out have used half of the reserved range. The receiver reserves a further range
// durably and calls ExtendReservationIDs.
func (e *Engine) ReservationIDsLow() <-chan struct{} { return e.ids.low }

// ReservationIDLimit returns the current bound (exclusive) on reservation ids, 0 when unbounded.
func (e *Engine) ReservationIDLimit() uint64 {
	e.ids.mu.Lock()
	defer e.ids.mu.Unlock()
	if e.ids.hard == math.MaxUint64 {
		return 0
	}
	return e.ids.hard << idShardBits
}

// ReservationIDHigh returns the largest id any account may have been handed so far (whole blocks
// count as handed out), so the next range a store reserves starts above it.
func (e *Engine) ReservationIDHigh() uint64 {
	return (e.nextID.Load()+1)<<idShardBits - 1
}

// ExtendReservationIDs raises the bound on reservation ids to limit, once the store has reserved ids
// below it durably. A limit at or below the current one changes nothing.
func (e *Engine) ExtendReservationIDs(limit uint64) error {
	if limit > maxReservationID {
		return errs.Invalid("reservation_id_limit", "must be at most %d", uint64(maxReservationID))
	}
	g := &e.ids
	g.mu.Lock()
	defer g.mu.Unlock()
	hard := limit >> idShardBits
	if g.hard == math.MaxUint64 || hard <= g.hard {
		return nil
	}
	// Ask again once half of what is left from here is used.
	used := min(e.nextID.Load(), hard)
	g.soft.Store(used + (hard-used)/2)
	g.hard = hard
	g.cond.Broadcast()
	return nil
}

// admit is takeID's slow path, for a block whose last counter value is last: it asks for a further
// range and, if the block reaches past the reserved one, waits until it is extended. The caller
// holds the account's lock, so only that account and others that run out meanwhile wait.
func (g *idGate) admit(last uint64) {
	select {
	case g.low <- struct{}{}:
	default: // a request is already pending
	}
	g.mu.Lock()
	for last >= g.hard {
		g.cond.Wait()
	}
	g.mu.Unlock()
}

// Incarnation returns Config.Incarnation: which start of the durable state this engine is. It
// changes on every restart of a store-backed engine, so a caller that sees it change knows every
// reservation it holds (and anything else kept only in memory) must be restored.
func (e *Engine) Incarnation() uint64 { return e.incarnation }
