package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"iter"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// EventKind names the durable mutation an Event carries.
type EventKind string

const (
	EventDefineAsset     EventKind = "define_asset"
	EventDefineSymbol    EventKind = "define_symbol"
	EventOpenAccount     EventKind = "open_account"
	EventCredit          EventKind = "credit"
	EventDebit           EventKind = "debit"
	EventExecutions      EventKind = "executions"
	EventSetLimits       EventKind = "set_limits"
	EventSetTradingState EventKind = "set_trading_state"
)

// Event is one durable change, in the form a store persists and Apply replays. Exactly one payload
// field is set, the one matching Kind. Events are plain JSON-marshalable values; Seq numbers them
// 1, 2, 3 … in the order they were applied, which is the order they must be replayed in.
type Event struct {
	Seq          uint64              `json:"seq"`
	Kind         EventKind           `json:"kind"`
	Asset        *Asset              `json:"asset,omitempty"`
	Symbol       *SymbolSpec         `json:"symbol,omitempty"`
	Account      *AccountSpec        `json:"account,omitempty"`
	Transfer     *Transfer           `json:"transfer,omitempty"` // credit and debit
	Executions   []Execution         `json:"executions,omitempty"`
	Limits       *LimitsChange       `json:"limits,omitempty"`
	TradingState *TradingStateChange `json:"trading_state,omitempty"`
	Settlement   *SettlementRecord   `json:"settlement,omitempty"`
}

// PersistFunc stores an event durably. The engine calls it with the accounts the event touches
// locked, after validating the change and before applying it; the change is applied only if it
// returns nil, so a failed write leaves the engine as it was. It must not call back into the engine
// (that would deadlock) nor modify the event. A nil PersistFunc keeps the engine purely in memory.
type PersistFunc func(Event) error

// commit is the second half of every durable mutation: the caller holds the commit lock and has
// validated the change; commit numbers the event, persists it and only then applies it.
func (e *Engine) commit(ev *Event, persist PersistFunc, apply func()) error {
	ev.Seq = e.seq + 1
	if persist != nil {
		if err := persist(*ev); err != nil {
			if _, ok := errors.AsType[*errs.Error](err); ok {
				return err
			}
			return errs.Wrap(errs.KindUnavailable, err, "persist event %d", ev.Seq)
		}
	}
	apply()
	e.seq = ev.Seq
	return nil
}

// LastSeq is the Seq of the last event applied, 0 for a fresh engine.
func (e *Engine) LastSeq() uint64 {
	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	return e.seq
}

// Apply replays one stored event into the engine, to rebuild it after a restart. Events must come in
// Seq order with no gap, starting at 1. Each event goes through the same validation as the original
// call and must produce exactly the stored event; anything else means the log does not belong to
// this engine (or its Config), and Apply fails without changing anything.
//
// Apply is refused once CheckOrder or RestoreReservation has been called: replayed fills do not
// consume reservations, so replay must finish before any exist. Rebuild in this order: New, Apply every event, RestoreReservation
// for every resting order, then serve.
func (e *Engine) Apply(ev Event) error {
	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	if e.reservationsUsed.Load() {
		return errs.New(errs.KindFailedPrecondition, "events can only be replayed before reservations are made")
	}
	if ev.Seq != e.seq+1 {
		return errs.New(errs.KindFailedPrecondition, "event seq %d out of order: next is %d", ev.Seq, e.seq+1)
	}
	if !ev.wellFormed() {
		return errs.Invalid("event", "event %d (%q) must carry exactly the one payload its kind names", ev.Seq, ev.Kind)
	}
	produced := false
	var mismatch error
	check := func(got Event) error {
		produced = true
		if !sameEvent(got, ev) {
			mismatch = errs.New(errs.KindFailedPrecondition, "event %d replays differently: the log and the engine disagree", ev.Seq)
			return mismatch
		}
		return nil
	}
	var err error
	switch ev.Kind {
	case EventDefineAsset:
		err = e.defineAsset(*ev.Asset, check)
	case EventDefineSymbol:
		err = e.defineSymbol(*ev.Symbol, check)
	case EventOpenAccount:
		err = e.openAccount(*ev.Account, check)
	case EventCredit, EventDebit:
		_, err = e.transfer(ev.Kind, *ev.Transfer, check, true)
	case EventExecutions:
		_, err = e.applyExecutions(ev.Executions, check, true)
	case EventSetLimits:
		err = e.setLimits(*ev.Limits, check)
	case EventSetTradingState:
		err = e.setTradingState(*ev.TradingState, check)
	case EventSettlement:
		_, _, err = e.applySettlement(ev.Settlement, nil, check, planReplay)
	default:
		return errs.Invalid("event.kind", "unknown kind %q in event %d", ev.Kind, ev.Seq)
	}
	switch {
	case mismatch != nil:
		return mismatch
	case err != nil:
		return fmt.Errorf("replay event %d (%s): %w", ev.Seq, ev.Kind, err)
	case !produced:
		return errs.New(errs.KindFailedPrecondition, "event %d (%s) changes nothing on replay: the log and the engine disagree", ev.Seq, ev.Kind)
	}
	return nil
}

// Replay applies events in order, stopping at the first error (from the source or from Apply).
func (e *Engine) Replay(events iter.Seq2[Event, error]) error {
	for ev, err := range events {
		if err != nil {
			return err
		}
		if err := e.Apply(ev); err != nil {
			return err
		}
	}
	return nil
}

// wellFormed reports whether exactly one payload is set and it is the one Kind calls for.
func (ev *Event) wellFormed() bool {
	set := 0
	for _, p := range []bool{ev.Asset != nil, ev.Symbol != nil, ev.Account != nil, ev.Transfer != nil,
		len(ev.Executions) > 0, ev.Limits != nil, ev.TradingState != nil, ev.Settlement != nil} {
		if p {
			set++
		}
	}
	if set != 1 {
		return false
	}
	switch ev.Kind {
	case EventDefineAsset:
		return ev.Asset != nil
	case EventDefineSymbol:
		return ev.Symbol != nil
	case EventOpenAccount:
		return ev.Account != nil
	case EventCredit, EventDebit:
		return ev.Transfer != nil
	case EventExecutions:
		return len(ev.Executions) > 0
	case EventSetLimits:
		return ev.Limits != nil
	case EventSetTradingState:
		return ev.TradingState != nil
	case EventSettlement:
		return ev.Settlement != nil
	}
	return false
}

// sameEvent compares events by their stored form, so that nil and empty fields that marshal alike
// compare equal.
func sameEvent(a, b Event) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}
