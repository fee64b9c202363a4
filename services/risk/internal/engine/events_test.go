package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// recorder is a minimal store: it keeps events as JSON, as a database would.
type recorder struct{ rows [][]byte }

func (r *recorder) persist(ev Event) error {
	raw, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	r.rows = append(r.rows, raw)
	return nil
}

func (r *recorder) events() iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		for _, raw := range r.rows {
			var ev Event
			err := json.Unmarshal(raw, &ev)
			if !yield(ev, err) || err != nil {
				return
			}
		}
	}
}

// scripted builds an engine through every kind of event and leaves open reservations behind.
func scripted(t *testing.T, store *recorder) *Engine {
	p := store.persist
	e, err := New(Config{DailyCutoff: 22 * time.Hour})
	must(t, err)
	must(t, e.DefineAsset(Asset{ID: "USD", Scale: 2}, p))
	must(t, e.DefineAsset(Asset{ID: "BTC", Scale: 8}, p))
	spec := SymbolSpec{ID: btcUSD, Base: "BTC", Quote: "USD", PriceScale: 2, TakerFeePPM: feePPM, ReferencePrice: refPrice}
	must(t, e.DefineSymbol(spec, p))
	for _, id := range []string{"alice", "bob"} {
		must(t, e.OpenAccount(AccountSpec{ID: id, Limits: Limits{MaxPosition: 50, PriceBandPPM: 200_000}}, p))
		_, err := e.Credit(Transfer{Account: id, Asset: "USD", Amount: 5_000_000, Ref: id + "-usd"}, p)
		must(t, err)
		_, err = e.Credit(Transfer{Account: id, Asset: "BTC", Amount: 20 * btcPerLot, Ref: id + "-btc"}, p)
		must(t, err)
	}
	_, err = e.Debit(Transfer{Account: "bob", Asset: "USD", Amount: 1_234, Ref: "bob-w1"}, p)
	must(t, err)
	must(t, e.SetLimits(LimitsChange{Account: "alice", Symbol: btcUSD, Limits: Limits{MaxDailyLoss: 90_000}}, p))
	must(t, e.SetTradingState(TradingStateChange{Account: "bob", State: TradingReduceOnly}, p))
	must(t, e.SetTradingState(TradingStateChange{Account: "bob", State: TradingActive}, p))

	buy := mustAccept(t, e, order("alice", SideBuy, 10_000, 6))
	sell := mustAccept(t, e, order("bob", SideSell, 9_800, 10))
	fill := func(id string, buyQty int64, price int64, when time.Duration) {
		_, err := e.ApplyExecutions([]Execution{
			{ExecID: id + "b", ReservationID: buy, Account: "alice", Symbol: btcUSD, Side: SideBuy, Price: price, Qty: buyQty, Fee: ceilPPM(price*buyQty, feePPM), Time: at(t0, when)},
			{ExecID: id + "s", ReservationID: sell, Account: "bob", Symbol: btcUSD, Side: SideSell, Price: price, Qty: buyQty, Fee: 3, Time: at(t0, when)},
		}, p)
		must(t, err)
	}
	fill("f1", 2, 9_900, 0)
	fill("f2", 1, 9_800, 30*time.Hour) // next trading day
	spec.TakerFeePPM = 500
	must(t, e.DefineSymbol(spec, p))
	tradePersisted(t, e, p, "bob", "alice", 10_200, 2, at(t0, 31*time.Hour))
	must(t, e.SetTradingState(TradingStateChange{State: TradingReduceOnly}, p))
	return e
}

// TestReplayRebuildsIdenticalState: events → JSON → fresh engine → same views, and with the open
// reservations restored the same reserved amounts too.
func TestReplayRebuildsIdenticalState(t *testing.T) {
	store := &recorder{}
	orig := scripted(t, store)
	fresh, err := New(Config{DailyCutoff: 22 * time.Hour})
	must(t, err)
	must(t, fresh.Replay(store.events()))
	if fresh.LastSeq() != orig.LastSeq() || fresh.LastSeq() != uint64(len(store.rows)) {
		t.Fatalf("seq %d after replay, original %d, %d rows", fresh.LastSeq(), orig.LastSeq(), len(store.rows))
	}
	if fresh.GlobalTradingState() != TradingReduceOnly || !reflect.DeepEqual(fresh.Symbols(), orig.Symbols()) || !reflect.DeepEqual(fresh.Assets(), orig.Assets()) {
		t.Fatal("global state, symbols or assets differ")
	}
	// Restore the open reservations. They were made at 1000 ppm and the fee is now 500 ppm, so the
	// restored buy reserves less: compare reserved amounts only once both sides release them.
	var restored uint64
	for _, id := range orig.AccountIDs() {
		for _, r := range view(t, orig, id).Reservations {
			restored = max(restored, r.ID)
			must(t, fresh.RestoreReservation(RestoredReservation{ID: r.ID, Account: id, Symbol: r.Symbol, Side: r.Side, Price: r.Price, Qty: r.Qty}))
		}
	}
	for _, id := range orig.AccountIDs() {
		want, got := view(t, orig, id), view(t, fresh, id)
		for i := range want.Reservations {
			want.Reservations[i].Amount = got.Reservations[i].Amount
		}
		want.Balances, got.Balances = totalsOnly(want.Balances), totalsOnly(got.Balances)
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("%s after replay:\nwant %+v\ngot  %+v", id, want, got)
		}
	}
	// Release everything on both sides: now even reserved amounts must agree.
	for _, e := range []*Engine{orig, fresh} {
		for _, id := range e.AccountIDs() {
			for _, r := range view(t, e, id).Reservations {
				must(t, e.Release(r.ID))
			}
		}
	}
	for _, id := range orig.AccountIDs() {
		if want, got := view(t, orig, id), view(t, fresh, id); !reflect.DeepEqual(want, got) {
			t.Fatalf("%s after releasing:\nwant %+v\ngot  %+v", id, want, got)
		}
	}
	// New reservation ids continue above the restored ones.
	if restored == 0 {
		t.Fatal("the script left no open reservations")
	}
	if id := mustAccept(t, fresh, order("alice", SideSell, 10_000, 1)); id <= restored {
		t.Fatalf("new id %d not above restored %d", id, restored)
	}
}

func totalsOnly(bs []BalanceView) []BalanceView {
	out := make([]BalanceView, len(bs))
	for i, b := range bs {
		out[i] = BalanceView{Asset: b.Asset, Total: b.Total}
	}
	return out
}

func TestApplyRefusesBadLogs(t *testing.T) {
	store := &recorder{}
	scripted(t, store)
	var evs []Event
	for ev, err := range store.events() {
		must(t, err)
		evs = append(evs, ev)
	}
	fresh := func() *Engine {
		e, err := New(Config{DailyCutoff: 22 * time.Hour})
		must(t, err)
		return e
	}

	e := fresh()
	wantKind(t, e.Apply(evs[1]), errs.KindFailedPrecondition) // gap
	must(t, e.Apply(evs[0]))
	wantKind(t, e.Apply(evs[0]), errs.KindFailedPrecondition) // repeat

	// An edited event that no longer validates.
	e = fresh()
	for _, ev := range evs[:3] {
		must(t, e.Apply(ev))
	}
	if evs[3].Kind != EventOpenAccount {
		t.Fatalf("event 4 is %s", evs[3].Kind)
	}
	edited := evs[3]
	edited.Account = &AccountSpec{ID: edited.Account.ID, Limits: Limits{MaxPosition: -1}}
	wantKind(t, e.Apply(edited), errs.KindInvalidArgument)
	twoPayloads := evs[3]
	twoPayloads.Asset = &Asset{ID: "X"}
	wantKind(t, e.Apply(twoPayloads), errs.KindInvalidArgument)
	unknown := evs[3]
	unknown.Kind = "rename_account"
	wantKind(t, e.Apply(unknown), errs.KindInvalidArgument)
	must(t, e.Apply(evs[3]))

	// An event that validates but replays differently: a batch repeating an applied execution would
	// be stored without it.
	e = fresh()
	first := -1
	for i, ev := range evs {
		must(t, e.Apply(ev))
		if ev.Kind == EventExecutions {
			first = i
			break
		}
	}
	mixed := evs[first]
	mixed.Seq++
	fresh1 := mixed.Executions[0]
	fresh1.ExecID = "never-seen"
	mixed.Executions = []Execution{mixed.Executions[0], fresh1}
	wantKind(t, e.Apply(mixed), errs.KindFailedPrecondition)
	if e.LastSeq() != evs[first].Seq {
		t.Fatal("a mismatching event was applied")
	}

	// A no-op on replay means the log is not this engine's: an asset defined twice.
	e = fresh()
	must(t, e.Apply(evs[0]))
	again := evs[0]
	again.Seq = 2
	wantKind(t, e.Apply(again), errs.KindFailedPrecondition)

	// A different Config (the fee account is named differently) shows up as a mismatch.
	other, err := New(Config{FeeAccount: "alice", DailyCutoff: 22 * time.Hour})
	must(t, err)
	err = other.Replay(func(yield func(Event, error) bool) {
		for _, ev := range evs {
			if !yield(ev, nil) {
				return
			}
		}
	})
	wantKind(t, err, errs.KindAlreadyExists) // OpenAccount("alice") collides with the fee account

	// Once reservations exist, replay is refused.
	e = fresh()
	for _, ev := range evs[:8] {
		must(t, e.Apply(ev))
	}
	e.CheckOrder(order("alice", SideBuy, 10_000, 1))
	wantKind(t, e.Apply(evs[8]), errs.KindFailedPrecondition)

	// A source error stops Replay.
	boom := errors.New("read failed")
	if err := fresh().Replay(func(yield func(Event, error) bool) { yield(Event{}, boom) }); !errors.Is(err, boom) {
		t.Fatalf("source error: %v", err)
	}
}

func TestRestoreReservationValidation(t *testing.T) {
	e := newFixture(t, Config{ReservationIDFloor: 1_000})
	fund(t, e, "alice", 100_000, 1)
	ok := RestoredReservation{ID: 5_000, Account: "alice", Symbol: btcUSD, Side: SideSell, Price: 10_000, Qty: 1}
	for _, tc := range []struct {
		mut  func(*RestoredReservation)
		kind errs.Kind
	}{
		{func(r *RestoredReservation) { r.ID = 0 }, errs.KindInvalidArgument},
		{func(r *RestoredReservation) { r.ID = 1<<62 + 1 }, errs.KindInvalidArgument},
		{func(r *RestoredReservation) { r.Qty = 0 }, errs.KindInvalidArgument},
		{func(r *RestoredReservation) { r.Price = -1 }, errs.KindInvalidArgument},
		{func(r *RestoredReservation) { r.Side = 0 }, errs.KindInvalidArgument},
		{func(r *RestoredReservation) { r.Account = "bob" }, errs.KindNotFound},
		{func(r *RestoredReservation) { r.Symbol = "X" }, errs.KindNotFound},
		{func(r *RestoredReservation) { r.Qty = 2 }, errs.KindFailedPrecondition},
		{func(r *RestoredReservation) { r.Qty = 1 << 62 }, errs.KindInvalidArgument},
	} {
		r := ok
		tc.mut(&r)
		wantKind(t, e.RestoreReservation(r), tc.kind)
	}
	must(t, e.RestoreReservation(ok))
	wantKind(t, e.RestoreReservation(ok), errs.KindAlreadyExists)

	// New ids are above the floor and above every restored id.
	id := mustAccept(t, e, order("alice", SideBuy, 10_000, 1))
	if id <= 5_000 {
		t.Fatalf("id %d not above the restored 5000", id)
	}
	// Once orders are being checked, accounts hold id blocks a restored id could fall into.
	wantKind(t, e.RestoreReservation(RestoredReservation{ID: 9_999_999, Account: "alice", Symbol: btcUSD, Side: SideBuy, Price: 1, Qty: 1}), errs.KindFailedPrecondition)
	must(t, e.Release(5_000))
	must(t, e.Release(id))

	fresh := newFixture(t, Config{ReservationIDFloor: 1_000})
	fund(t, fresh, "alice", 100_000, 0)
	if id := mustAccept(t, fresh, order("alice", SideBuy, 10_000, 1)); id <= 1_000 {
		t.Fatalf("id %d not above the floor", id)
	}
}

// TestReservationIDsAreUnique: ids from many accounts and goroutines never repeat, and each sits in
// its account's directory shard.
func TestReservationIDsAreUnique(t *testing.T) {
	e := newFixture(t, Config{})
	accounts := make([]string, 100)
	for i := range accounts {
		accounts[i] = fmt.Sprintf("u%d", i)
		fund(t, e, accounts[i], 1<<40, 0)
	}
	var mu sync.Mutex
	seen := map[uint64]string{}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2_000 {
				acct := accounts[(g*31+i)%len(accounts)]
				id := mustAccept(t, e, order(acct, SideBuy, 10_000, 1))
				mu.Lock()
				if prev, dup := seen[id]; dup {
					t.Errorf("id %d issued to %s and %s", id, prev, acct)
				}
				seen[id] = acct
				mu.Unlock()
				if i%3 == 0 {
					must(t, e.Release(id))
				}
			}
		})
	}
	wg.Wait()
	for id, acct := range seen {
		if a := e.accounts.lookup(acct); id%directoryShards != uint64(a.index)%directoryShards {
			t.Fatalf("id %d of account index %d is in the wrong shard", id, a.index)
		}
	}
}

func TestEventJSONShape(t *testing.T) {
	raw, err := json.Marshal(Event{Seq: 7, Kind: EventExecutions, Executions: []Execution{{ExecID: "x", Side: SideSell, Qty: 1}}})
	must(t, err)
	want := `{"seq":7,"kind":"executions","executions":[{"exec_id":"x","reservation_id":0,"account":"","symbol":"","side":"sell","price":0,"qty":1,"fee":0,"time":0}]}`
	if string(raw) != want {
		t.Fatalf("got  %s\nwant %s", raw, want)
	}
	var ev Event
	if err := json.Unmarshal([]byte(`{"kind":"set_trading_state","trading_state":{"state":"sideways"}}`), &ev); err == nil {
		t.Fatal("unknown trading state accepted")
	}
	if _, err := json.Marshal(Event{Kind: EventSetTradingState, TradingState: &TradingStateChange{State: 9}}); err == nil {
		t.Fatal("invalid trading state marshalled")
	}
}
