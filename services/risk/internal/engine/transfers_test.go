package engine

import (
	"errors"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
)

func wantKind(t *testing.T, err error, kind errs.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want kind %d", kind)
	}
	if got := errs.KindOf(err); got != kind {
		t.Fatalf("error %q has kind %d, want %d", err, got, kind)
	}
}

func TestCreditIsIdempotentByRef(t *testing.T) {
	e := newFixture(t, Config{})
	must(t, e.OpenAccount(AccountSpec{ID: "alice"}, nil))
	persisted := 0
	persist := func(Event) error { persisted++; return nil }

	dep := Transfer{Account: "alice", Asset: "USD", Amount: 500, Ref: "dep-1"}
	first, err := e.Credit(dep, persist)
	must(t, err)
	again, err := e.Credit(dep, persist)
	must(t, err)
	if !again.Duplicate || again.Seq != first.Seq || again.Total != first.Total || first.Duplicate {
		t.Fatalf("first %+v, again %+v", first, again)
	}
	if persisted != 1 {
		t.Fatalf("persisted %d events, want 1", persisted)
	}
	if got := balanceOf(view(t, e, "alice"), "USD").Total; got != 500 {
		t.Fatalf("total %d, want 500", got)
	}

	changed := dep
	changed.Amount = 501
	_, err = e.Credit(changed, persist)
	wantKind(t, err, errs.KindAlreadyExists)
	_, err = e.Debit(dep, persist) // same content, but a debit
	wantKind(t, err, errs.KindAlreadyExists)
}

// Refs are scoped per account: alice debiting with the ref the operator will use for bob's deposit
// does not block that deposit, and nothing alice is told reveals whether bob used a ref.
func TestRefsAreScopedPerAccount(t *testing.T) {
	e := newFixture(t, Config{})
	fund(t, e, "alice", 1_000, 0)
	must(t, e.OpenAccount(AccountSpec{ID: "bob"}, nil))
	squat, err := e.Debit(Transfer{Account: "alice", Asset: "USD", Amount: 1, Ref: "deposit-bob-2"}, nil)
	must(t, err)
	dep, err := e.Credit(Transfer{Account: "bob", Asset: "USD", Amount: 500, Ref: "deposit-bob-2"}, nil)
	if err != nil {
		t.Fatalf("bob's deposit refused after alice used its ref: %v", err)
	}
	if dep.Duplicate || dep.Total != 500 || squat.Duplicate {
		t.Fatalf("squat %+v, deposit %+v", squat, dep)
	}
	// Whatever alice sends with bob's ref is judged against her own transfers only.
	again, err := e.Debit(Transfer{Account: "alice", Asset: "USD", Amount: 1, Ref: "deposit-bob-2"}, nil)
	must(t, err)
	if !again.Duplicate || again.Seq != squat.Seq {
		t.Fatalf("alice's repeat: %+v", again)
	}
	_, err = e.Debit(Transfer{Account: "alice", Asset: "USD", Amount: 2, Ref: "deposit-bob-3"}, nil)
	must(t, err) // bob never used it, alice may: she cannot tell either way
	_, err = e.Credit(Transfer{Account: "bob", Asset: "USD", Amount: 7, Ref: "deposit-bob-3"}, nil)
	must(t, err)
	_, err = e.Credit(Transfer{Account: "alice", Asset: "USD", Amount: 500, Ref: "deposit-bob-2"}, nil)
	wantKind(t, err, errs.KindAlreadyExists) // her own debit used it
	// Account ids are arbitrary bytes: scoping must not let two (account, ref) pairs collide.
	must(t, e.OpenAccount(AccountSpec{ID: "ab"}, nil))
	must(t, e.OpenAccount(AccountSpec{ID: "a"}, nil))
	_, err = e.Credit(Transfer{Account: "ab", Asset: "USD", Amount: 3, Ref: "c"}, nil)
	must(t, err)
	res, err := e.Credit(Transfer{Account: "a", Asset: "USD", Amount: 3, Ref: "bc"}, nil)
	if err != nil || res.Duplicate {
		t.Fatalf("(a, bc) collided with (ab, c): %+v %v", res, err)
	}
	if got := balanceOf(view(t, e, "bob"), "USD").Total; got != 507 {
		t.Fatalf("bob's balance %d, want 507", got)
	}
}

func TestDebitIsIdempotentAndNeverTakesReservedFunds(t *testing.T) {
	e := newFixture(t, Config{})
	fund(t, e, "alice", 100_000, 0)
	mustAccept(t, e, order("alice", SideBuy, 10_000, 5)) // reserves 50,000 + 50 fee
	_, err := e.Debit(Transfer{Account: "alice", Asset: "USD", Amount: 49_951, Ref: "w-1"}, nil)
	wantKind(t, err, errs.KindFailedPrecondition)
	res, err := e.Debit(Transfer{Account: "alice", Asset: "USD", Amount: 49_950, Ref: "w-1"}, nil)
	must(t, err)
	dup, err := e.Debit(Transfer{Account: "alice", Asset: "USD", Amount: 49_950, Ref: "w-1"}, nil)
	must(t, err)
	if !dup.Duplicate || dup.Total != res.Total || res.Total != 50_050 {
		t.Fatalf("first %+v, duplicate %+v", res, dup)
	}
	if b := balanceOf(view(t, e, "alice"), "USD"); b.Available != 0 || b.Total != 50_050 {
		t.Fatalf("balance %+v", b)
	}
}

func TestTransferValidation(t *testing.T) {
	e := newFixture(t, Config{})
	must(t, e.OpenAccount(AccountSpec{ID: "alice"}, nil))
	for _, tc := range []struct {
		tr   Transfer
		kind errs.Kind
	}{
		{Transfer{Account: "alice", Asset: "USD", Amount: 0, Ref: "r"}, errs.KindInvalidArgument},
		{Transfer{Account: "alice", Asset: "USD", Amount: -5, Ref: "r"}, errs.KindInvalidArgument},
		{Transfer{Account: "alice", Asset: "USD", Amount: 5}, errs.KindInvalidArgument},
		{Transfer{Account: "nobody", Asset: "USD", Amount: 5, Ref: "r"}, errs.KindNotFound},
		{Transfer{Account: "alice", Asset: "EUR", Amount: 5, Ref: "r"}, errs.KindNotFound},
	} {
		_, err := e.Credit(tc.tr, nil)
		wantKind(t, err, tc.kind)
	}
	_, err := e.Credit(Transfer{Account: "alice", Asset: "USD", Amount: 1<<63 - 1, Ref: "big"}, nil)
	must(t, err)
	_, err = e.Credit(Transfer{Account: "alice", Asset: "USD", Amount: 1, Ref: "one-more"}, nil)
	wantKind(t, err, errs.KindInvalidArgument)
	var ee *errs.Error
	if !errors.As(err, &ee) || ee.Field != "transfer.amount" {
		t.Fatalf("overflow error %v does not name transfer.amount", err)
	}
}

func TestPersistFailureChangesNothing(t *testing.T) {
	e := newFixture(t, Config{})
	fund(t, e, "alice", 1_000, 0)
	before, seq := view(t, e, "alice"), e.LastSeq()
	boom := errors.New("disk full")
	_, err := e.Credit(Transfer{Account: "alice", Asset: "USD", Amount: 5, Ref: "r"}, func(Event) error { return boom })
	wantKind(t, err, errs.KindUnavailable)
	if !errors.Is(err, boom) {
		t.Fatalf("error %v does not wrap the store's", err)
	}
	// A kind chosen by the store is kept.
	err = e.SetTradingState(TradingStateChange{State: TradingHalted}, func(Event) error {
		return errs.New(errs.KindResourceExhausted, "quota")
	})
	wantKind(t, err, errs.KindResourceExhausted)
	if e.GlobalTradingState() != TradingActive || e.LastSeq() != seq {
		t.Fatalf("failed persists changed state: global %v seq %d→%d", e.GlobalTradingState(), seq, e.LastSeq())
	}
	if after := view(t, e, "alice"); after.Balances[0] != before.Balances[0] {
		t.Fatalf("balance changed: %+v → %+v", before, after)
	}
	// The ref is still free after the failure.
	_, err = e.Credit(Transfer{Account: "alice", Asset: "USD", Amount: 5, Ref: "r"}, nil)
	must(t, err)
}

func TestDefinitions(t *testing.T) {
	e, err := New(Config{})
	must(t, err)
	must(t, e.DefineAsset(Asset{ID: "USD", Scale: 2}, nil))
	must(t, e.DefineAsset(Asset{ID: "BTC", Scale: 8}, nil))
	seq := e.LastSeq()
	must(t, e.DefineAsset(Asset{ID: "USD", Scale: 2}, nil)) // identical: no event
	if e.LastSeq() != seq {
		t.Fatal("identical asset definition produced an event")
	}
	wantKind(t, e.DefineAsset(Asset{ID: "USD", Scale: 4}, nil), errs.KindFailedPrecondition)
	wantKind(t, e.DefineAsset(Asset{ID: "X", Scale: 19}, nil), errs.KindInvalidArgument)
	wantKind(t, e.DefineAsset(Asset{ID: "bad id", Scale: 1}, nil), errs.KindInvalidArgument)

	spec := SymbolSpec{ID: btcUSD, Base: "BTC", Quote: "USD", PriceScale: 2, QtyScale: 0, TakerFeePPM: 10}
	for _, bad := range []SymbolSpec{
		{ID: "A", Base: "BTC", Quote: "USD", PriceScale: 2, QtyScale: 1}, // 2+1 > USD scale 2
		{ID: "A", Base: "BTC", Quote: "USD", PriceScale: 0, QtyScale: 9}, // qty finer than a satoshi
		{ID: "A", Base: "BTC", Quote: "BTC"},                             // same asset
		{ID: "A", Base: "BTC", Quote: "USD", TakerFeePPM: ppm + 1},       // fee above 100 %
		{ID: "A", Base: "BTC", Quote: "USD", ReferencePrice: -1},         // negative reference
	} {
		wantKind(t, e.DefineSymbol(bad, nil), errs.KindInvalidArgument)
	}
	wantKind(t, e.DefineSymbol(SymbolSpec{ID: "A", Base: "ETH", Quote: "USD"}, nil), errs.KindNotFound)
	must(t, e.DefineSymbol(spec, nil))
	spec.TakerFeePPM, spec.ReferencePrice = 20, 5 // may change
	must(t, e.DefineSymbol(spec, nil))
	if v, err := e.Symbol(btcUSD); err != nil || v.TakerFeePPM != 20 || v.ReferencePrice != 5 {
		t.Fatalf("symbol after update: %+v, %v", v, err)
	}
	spec.PriceScale = 1 // may not
	wantKind(t, e.DefineSymbol(spec, nil), errs.KindFailedPrecondition)
	wantKind(t, e.OpenAccount(AccountSpec{ID: "fees"}, nil), errs.KindAlreadyExists)
	wantKind(t, e.OpenAccount(AccountSpec{ID: ""}, nil), errs.KindInvalidArgument)
	wantKind(t, e.OpenAccount(AccountSpec{ID: "x\n"}, nil), errs.KindInvalidArgument)
	wantKind(t, e.OpenAccount(AccountSpec{ID: "x", Limits: Limits{MaxPosition: -1}}, nil), errs.KindInvalidArgument)
	for _, cfg := range []Config{{DailyCutoff: -1}, {DailyCutoff: 24 * time.Hour}, {ReservationIDFloor: 1<<62 + 1}, {FeeAccount: "\x00"}} {
		if _, err := New(cfg); errs.KindOf(err) != errs.KindInvalidArgument {
			t.Fatalf("New(%+v): %v", cfg, err)
		}
	}
}
