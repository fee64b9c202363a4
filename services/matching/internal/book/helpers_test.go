package book

import (
	"testing"
)

var testInstrument = Instrument{TickSize: 1, LotSize: 1, MinQty: 1, MaxQty: 1000, MaxPrice: 1000}

type opt func(*NewOrder)

func acc(a uint32) opt      { return func(o *NewOrder) { o.Account = a } }
func tif(t TimeInForce) opt { return func(o *NewOrder) { o.TIF = t } }
func stp(m STPMode) opt     { return func(o *NewOrder) { o.STP = m } }
func display(q int64) opt   { return func(o *NewOrder) { o.DisplayQty = q } }
func postOnly(o *NewOrder)  { o.PostOnly = true }
func expireAt(at int64) opt { return func(o *NewOrder) { o.ExpireAt = at } }
func now(t int64) opt       { return func(o *NewOrder) { o.Now = t } }
func typ(t OrderType) opt   { return func(o *NewOrder) { o.Type = t } }
func gtd(at int64) opt      { return func(o *NewOrder) { o.TIF, o.ExpireAt, o.Now = GTD, at, 1000 } }
func withSide(s Side) opt   { return func(o *NewOrder) { o.Side = s } }
func apply(o NewOrder, opts []opt) NewOrder {
	for _, f := range opts {
		f(&o)
	}
	return o
}

// buy and sell build limit orders for account 1 unless told otherwise.
func buy(id uint64, px, qty int64, opts ...opt) command {
	return command{kind: cmdSubmit, order: apply(NewOrder{ID: id, Account: 1, Side: Buy, Price: px, Qty: qty, Now: 1000}, opts)}
}

func sell(id uint64, px, qty int64, opts ...opt) command {
	return command{kind: cmdSubmit, order: apply(NewOrder{ID: id, Account: 1, Side: Sell, Price: px, Qty: qty, Now: 1000}, opts)}
}

func marketOrder(id uint64, side Side, qty int64, opts ...opt) command {
	return command{kind: cmdSubmit, order: apply(NewOrder{ID: id, Account: 1, Side: side, Type: Market, Qty: qty, Now: 1000}, opts)}
}

// stopOrder is a stop-market order.
func stopOrder(id uint64, side Side, trig, qty int64, opts ...opt) command {
	return command{kind: cmdSubmit, order: apply(NewOrder{ID: id, Account: 1, Side: side, Type: Stop, TriggerPrice: trig, Qty: qty, Now: 1000}, opts)}
}

func stopLimit(id uint64, side Side, trig, px, qty int64, opts ...opt) command {
	return command{kind: cmdSubmit, order: apply(NewOrder{ID: id, Account: 1, Side: side, Type: StopLimit, TriggerPrice: trig, Price: px, Qty: qty, Now: 1000}, opts)}
}

func cancel(id uint64) command   { return command{kind: cmdCancel, id: id} }
func cancelAll(a uint32) command { return command{kind: cmdCancelAll, account: a} }
func expire(t int64) command     { return command{kind: cmdExpire, now: t} }
func amend(a Amend) command      { return command{kind: cmdAmend, amend: a} }
func amendQty(id uint64, q int64) command {
	return amend(Amend{ID: id, Qty: q})
}
func amendPrice(id uint64, px int64) command {
	return amend(Amend{ID: id, Price: px})
}

// run applies commands, checking invariants after each, and returns the
// events of all of them.
func run(t *testing.T, b *Book, cmds ...command) []Event {
	t.Helper()
	var all []Event
	for i := range cmds {
		all = cmds[i].apply(b, all)
		if err := b.checkInvariants(); err != nil {
			t.Fatalf("command %d %+v: %v", i, cmds[i], err)
		}
	}
	return all
}

type bookCase struct {
	name  string
	setup []command
	cmds  []command
	want  []string
}

// runCases runs table cases on both index implementations.
func runCases(t *testing.T, cases []bookCase) {
	t.Helper()
	for _, kind := range indexKinds {
		for _, tc := range cases {
			t.Run(kind.String()+"/"+tc.name, func(t *testing.T) {
				b := newBook(testInstrument, kind)
				run(t, b, tc.setup...)
				got := eventStrings(run(t, b, tc.cmds...))
				if d := diffLines(got, tc.want); d != "" {
					t.Errorf("events differ:\n%s", d)
				}
			})
		}
	}
}
