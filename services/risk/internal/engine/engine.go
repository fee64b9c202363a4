// Package engine is the risk engine of bourse: per-account balances and reservations, pre-trade
// checks, settlement of executions, positions and PnL, risk limits and kill switches. It is domain
// code only: integers for every amount (no floats, no decimal type), no clock, no I/O, no gRPC or SQL.
//
// # Units
//
// An Asset has a fixed Scale: amounts are integers of 10^-Scale (USD at scale 8: 1 = 0.00000001 USD).
// A symbol (SymbolSpec) quotes prices in integer ticks of 10^-PriceScale and quantities in integer
// lots of 10^-QtyScale; with PriceScale+QtyScale <= quote scale and QtyScale <= base scale,
//
//	notional = price × qty × 10^(quote scale − PriceScale − QtyScale)   quote units
//	base     = qty × 10^(base scale − QtyScale)                          base units
//
// are exact. Products are overflow-checked: an order whose amounts do not fit in int64 is rejected
// (RejectNotionalTooLarge), an execution or transfer that would overflow is an error.
//
// # Calls
//
//	eng, err := engine.New(engine.Config{FeeAccount: "fees", DailyCutoff: 22 * time.Hour})
//
//	// Durable mutations: validated, persisted through the callback, then applied (see below).
//	eng.DefineAsset(engine.Asset{ID: "USD", Scale: 8}, persist)
//	eng.DefineSymbol(engine.SymbolSpec{ID: "BTC-USD", Base: "BTC", Quote: "USD", ...}, persist)
//	eng.OpenAccount(engine.AccountSpec{ID: "alice", Limits: houseDefaults}, persist)
//	res, err := eng.Credit(engine.Transfer{Account: "alice", Asset: "USD", Amount: 1e10, Ref: "dep-1"}, persist)
//	res, err := eng.Debit(engine.Transfer{...}, persist)
//	eng.SetLimits(engine.LimitsChange{Account: "alice", Symbol: "BTC-USD", Limits: ...}, persist)
//	eng.SetTradingState(engine.TradingStateChange{Account: "", State: engine.TradingHalted}, persist)
//	res, err := eng.ApplyExecutions([]engine.Execution{...}, persist)
//
//	// In-memory, hot path: never persisted.
//	id, reject := eng.CheckOrder(engine.OrderCheck{Account: "alice", Symbol: "BTC-USD", ...})
//	err := eng.Release(id) // cancel or expiry
//
//	// Reads: copies, safe to keep.
//	view, err := eng.Account("alice")
//	eng.Symbol("BTC-USD"); eng.Symbols(); eng.Assets(); eng.AccountIDs(); eng.GlobalTradingState()
//
// CheckOrder answers with a Reject value (Accepted or the reason; Rejects lists them all for
// exhaustive mappings), not an error: refusing an order is a normal outcome. Every other failure is an
// *errs.Error from pkg/errs whose Kind (InvalidArgument with the offending field, NotFound,
// AlreadyExists, FailedPrecondition, ResourceExhausted, Unavailable for a failed persist) maps to a
// status code once, in the API layer. Nothing panics on bad input.
//
// # Risk model
//
// A buy reserves price × qty plus the taker fee rounded up, in quote; a sell reserves its base
// amount. A fill consumes its reservation so that what stays reserved is exactly what the unfilled
// rest needs at the order's own price; price improvement is freed at once, and Release frees the
// rest. Positions, PnL and limits are per (account, symbol), in that symbol's quote units:
//
//   - position: signed lots with an exact cost basis; realised PnL on reducing or flipping fills;
//   - mark price: the symbol's last fill price, which values unrealised PnL;
//   - equity = realised PnL − fees + unrealised PnL; its high-water mark is sampled at each of the
//     account's own fills; drawdown = high-water mark − equity at the current mark;
//   - daily loss: realised PnL less fees since the last daily cutoff (Config.DailyCutoff, UTC);
//   - MaxPosition counts every open order on the same side as if filled;
//   - when MaxDailyLoss or MaxDrawdown is reached, orders that only reduce the position still pass.
//
// Limits fields are 0 for "no limit". An account has default Limits, which a symbol override replaces
// as a whole; the order rate is a token bucket per account, refilled from OrderCheck.Now.
//
// # Durability
//
// Every durable change is an Event: a JSON-marshalable value with a Kind, a Seq and one payload.
// Each mutating method takes a PersistFunc and works in this order, holding the engine's commit lock
// and the locks of the accounts involved:
//
//  1. validate the command against the current state; on error return it, nothing persisted;
//  2. build the Event and number it (Seq = LastSeq()+1);
//  3. call persist(event); if it fails, return its error (KindUnavailable unless it already carries
//     a kind) and change nothing;
//  4. apply the change in memory and return the result.
//
// So the caller is answered only after the store has the event, and the order of persist calls is
// the order of Seq (a store can use Seq as its primary key). Idempotent repeats (a transfer whose Ref
// was applied, executions already applied, an identical asset or symbol definition) persist nothing.
// persist runs under locks: it must be quick and must not call back into the engine. A nil persist
// runs purely in memory.
//
// To rebuild after a restart: New with the same Config, LoadSnapshot the latest snapshot if there is
// one, Apply (or Replay) every stored event after it in Seq order, then RestoreReservation for each
// resting order, then serve. Apply re-validates each event through the same code and checks it
// reproduces the stored event exactly, so a log that does not belong to the engine fails loudly
// instead of rebuilding a different state. Snapshot encodes the whole durable state as of LastSeq
// (snapshot.go), so the log before it can be dropped.
//
// Reservations are deliberately not events: they change at order-entry rate and are fully described
// by the resting orders the caller keeps (id, account, symbol, side, price, remaining qty). Replayed
// fills never touch reservations, and Apply is refused once CheckOrder or RestoreReservation has been
// called, and RestoreReservation once CheckOrder has accepted an order. Ids come from an atomic
// counter, handed to each account in blocks (so they rise over time but are not strictly ordered
// across accounts); they are unique for the life of the process and issued above every restored
// one. Across restarts they stay unique through ranges the store reserves durably: ids are above
// Config.ReservationIDFloor (the previous incarnation's limit) and below Config.ReservationIDLimit,
// which the store raises ahead of use (ids.go).
//
// # Concurrency
//
// All methods are safe for concurrent use. Each account has its own mutex: CheckOrder calls for one
// account are serialised, so concurrent checks can never reserve more than is available, while
// different accounts proceed in parallel. Durable mutations are additionally serialised by one
// commit lock, which CheckOrder and Release never take. Assets and symbols are read through an
// atomically published copy-on-write catalog. CheckOrder does not allocate on its accept path once an
// account's reservation slab has grown to its working size.
package engine

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// Config is fixed for the life of an engine. A log must be replayed into an engine with the same
// FeeAccount and DailyCutoff it was written with.
type Config struct {
	// FeeAccount receives every fee charged on executions, as an ordinary account with that id. It
	// is created by New; the default is "fees".
	FeeAccount string
	// DailyCutoff is when the trading day rolls over, as an offset from 00:00 UTC (0 ≤ cutoff < 24h).
	// The daily loss counts realised PnL from one cutoff to the next.
	DailyCutoff time.Duration
	// ReservationIDFloor: every reservation id handed out is above it. At most 2^62, which leaves
	// room for more ids than any engine will hand out.
	ReservationIDFloor uint64
	// ReservationIDLimit, when non-zero, is the bound (exclusive) of the ids this engine may hand
	// out: what its store has reserved durably for this incarnation. Ids are never issued at or above
	// it; ExtendReservationIDs raises it (see ids.go). Zero means no bound, for engines without a store.
	ReservationIDLimit uint64
	// Incarnation numbers this start of the engine's durable state: the store increments it on every
	// start, so it changes exactly when in-memory state (reservations) was lost. 0 without a store.
	Incarnation uint64
}

const day = int64(24 * time.Hour)

// Engine is the risk engine. Create it with New.
type Engine struct {
	cutoff      int64 // Config.DailyCutoff in nanoseconds
	incarnation uint64

	// commitMu serialises durable mutations so that the order events are persisted in is the order
	// they are applied in. The fields below it are guarded by it.
	commitMu sync.Mutex
	seq      uint64
	refs     map[string]transferRecord // transfer idempotency, by refKey(account, ref)
	execs    map[string]Execution      // applied executions, by ExecID

	// Read by every CheckOrder, rarely written.
	catalog          atomic.Pointer[catalog]
	global           atomic.Uint32 // TradingState of the global kill switch
	reservationsUsed atomic.Bool
	feeAccount       *account
	ids              idGate // the durably reserved bound on nextID (ids.go)

	// nextID is the last id counter value handed out in an account's block (see takeID). It is
	// written once per block; the padding keeps those writes off the read-mostly fields' lines.
	_       [64]byte
	nextID  atomic.Uint64
	serving atomic.Bool // set once CheckOrder has issued ids: from then on nothing may be restored
	_       [64]byte

	accounts accountRegistry
	dir      directory

	settle settlement // settlement streams and reservation owners (settle.go, sync.go)
}

// New returns an empty engine holding only the fee account.
func New(cfg Config) (*Engine, error) {
	if cfg.FeeAccount == "" {
		cfg.FeeAccount = "fees"
	}
	if err := validateAccountID("config.fee_account", cfg.FeeAccount); err != nil {
		return nil, err
	}
	if cfg.DailyCutoff < 0 || int64(cfg.DailyCutoff) >= day {
		return nil, errs.Invalid("config.daily_cutoff", "must be within [0, 24h)")
	}
	if cfg.ReservationIDFloor > maxReservationID {
		return nil, errs.Invalid("config.reservation_id_floor", "must be at most %d", uint64(maxReservationID))
	}
	if cfg.ReservationIDLimit != 0 && (cfg.ReservationIDLimit > maxReservationID || cfg.ReservationIDLimit <= cfg.ReservationIDFloor) {
		return nil, errs.Invalid("config.reservation_id_limit", "must be above the floor and at most %d", uint64(maxReservationID))
	}
	e := &Engine{
		cutoff:      int64(cfg.DailyCutoff),
		incarnation: cfg.Incarnation,
		refs:        make(map[string]transferRecord),
		execs:       make(map[string]Execution),
	}
	e.catalog.Store(&catalog{assets: map[string]*asset{}, symbols: map[string]*symbol{}})
	e.accounts.init()
	// The fee account exists in every engine built from the same Config, so it is not an event.
	e.feeAccount = e.accounts.add(cfg.FeeAccount, Limits{})
	e.nextID.Store(cfg.ReservationIDFloor >> idShardBits) // the first id issued is above the floor
	e.ids.init(cfg.ReservationIDLimit, cfg.ReservationIDFloor>>idShardBits)
	return e, nil
}

// dayIndex numbers the trading day containing t (unix nanoseconds): days start at the cutoff.
func (e *Engine) dayIndex(t int64) int64 {
	// t − cutoff cannot overflow for the times that matter; clamp the rest rather than wrap.
	return floorDiv(satSub(t, e.cutoff), day)
}

// dayStart is the unix-nanosecond start of trading day d.
func (e *Engine) dayStart(d int64) int64 { return satAdd(satMulDay(d), e.cutoff) }

func satMulDay(d int64) int64 {
	switch {
	case d > maxInt64/day:
		return maxInt64
	case d < -maxInt64/day:
		return -maxInt64
	}
	return d * day
}
