package book

import (
	"iter"
	"slices"
	"testing"
)

func TestQueries(t *testing.T) {
	for _, kind := range indexKinds {
		t.Run(kind.String(), func(t *testing.T) {
			b := newBook(testInstrument, kind)
			if _, _, ok := b.BestBid(); ok {
				t.Fatal("empty book has a bid")
			}
			if _, ok := b.LastPrice(); ok {
				t.Fatal("empty book has a last price")
			}
			run(t, b,
				buy(1, 100, 5, acc(1)), buy(2, 100, 3, acc(2)), buy(3, 98, 1, acc(1)), buy(4, 200, 7, acc(3)), cancel(4),
				sell(5, 101, 10, acc(2), display(4)), sell(6, 103, 2, acc(1)), sell(7, 900, 1, acc(2)),
				stopOrder(8, Buy, 150, 1, acc(1)), stopOrder(9, Buy, 120, 1, acc(3)), stopLimit(10, Sell, 50, 49, 2, acc(1)),
			)
			if px, qty, ok := b.BestBid(); !ok || px != 100 || qty != 8 {
				t.Fatalf("best bid %d x %d %v", px, qty, ok)
			}
			if px, qty, ok := b.BestAsk(); !ok || px != 101 || qty != 4 {
				t.Fatalf("best ask %d x %d %v", px, qty, ok)
			}
			buf := make([]DepthLevel, 0, 8)
			bids := b.AppendDepth(buf, Buy, 5)
			wantBids := []DepthLevel{{100, 8, 2}, {98, 1, 1}}
			if !slices.Equal(bids, wantBids) {
				t.Fatalf("bids %v want %v", bids, wantBids)
			}
			asks := b.AppendDepth(buf[:0], Sell, 2)
			wantAsks := []DepthLevel{{101, 4, 1}, {103, 2, 1}}
			if !slices.Equal(asks, wantAsks) {
				t.Fatalf("asks %v want %v", asks, wantAsks)
			}
			if got := b.AppendDepth(nil, 0, 5); len(got) != 0 {
				t.Fatal("depth of an invalid side")
			}

			ids := func(seq func(func(OrderInfo) bool)) []uint64 {
				var out []uint64
				for o := range seq {
					out = append(out, o.ID)
				}
				return out
			}
			for _, c := range []struct {
				name string
				got  []uint64
				want []uint64
			}{
				{"L3 bids", ids(b.Orders(Buy)), []uint64{1, 2, 3}},
				{"L3 asks", ids(b.Orders(Sell)), []uint64{5, 6, 7}},
				{"buy stops", ids(b.StopOrders(Buy)), []uint64{9, 8}},
				{"sell stops", ids(b.StopOrders(Sell)), []uint64{10}},
				{"account 1", ids(b.AccountOrders(1)), []uint64{1, 3, 6, 8, 10}},
				{"account 3", ids(b.AccountOrders(3)), []uint64{9}},
				{"account 4", ids(b.AccountOrders(4)), nil},
				{"account 1 after 3", ids(after(t, b, 1, 3, true)), []uint64{6, 8, 10}},
				{"account 1 after its last", ids(after(t, b, 1, 10, true)), nil},
				{"account 1 after another's order", ids(after(t, b, 1, 9, false)), nil},
				{"account 1 after no order", ids(after(t, b, 1, 99, false)), nil},
			} {
				if !slices.Equal(c.got, c.want) {
					t.Errorf("%s: %v want %v", c.name, c.got, c.want)
				}
			}
			for account, want := range map[uint32]int{1: 5, 3: 1, 4: 0} {
				if n := b.AccountLen(account); n != want {
					t.Errorf("AccountLen(%d) = %d, want %d", account, n, want)
				}
			}
			// Early break from an iterator.
			for range b.Orders(Buy) {
				break
			}

			o, ok := b.Order(5)
			want := OrderInfo{ID: 5, Account: 2, Side: Sell, Status: StatusResting, Price: 101, Qty: 10,
				Remaining: 10, Visible: 4, DisplayQty: 4, AcceptSeq: o.AcceptSeq}
			if !ok || o != want || o.AcceptSeq == 0 {
				t.Fatalf("order 5 = %+v", o)
			}
			if o, ok := b.Order(10); !ok || o.Status != StatusPendingStop || o.TriggerPrice != 50 || o.Price != 49 {
				t.Fatalf("order 10 = %+v", o)
			}
			if _, ok := b.Order(4); ok {
				t.Fatal("cancelled order still found")
			}
			if b.Len() != 9 {
				t.Fatalf("len %d", b.Len())
			}
			run(t, b, buy(11, 101, 1, acc(3)))
			if px, ok := b.LastPrice(); !ok || px != 101 {
				t.Fatalf("last price %d %v", px, ok)
			}
			if b.Seq() == 0 {
				t.Fatal("no sequence number")
			}
		})
	}
}

func TestEventBufferReuse(t *testing.T) {
	b := New(testInstrument)
	buf := make([]Event, 0, 16)
	ev := b.Submit(buf, NewOrder{ID: 1, Account: 1, Side: Buy, Price: 100, Qty: 1})
	if &ev[0] != &buf[:1][0] {
		t.Fatal("events not appended into the caller's buffer")
	}
	ev = b.Submit(ev, NewOrder{ID: 2, Account: 1, Side: Buy, Price: 99, Qty: 1})
	if len(ev) != 4 || ev[3].Seq != 4 {
		t.Fatalf("append semantics broken: %v", ev)
	}
}

// after is AccountOrdersAfter, checking whether it found the order.
func after(t *testing.T, b *Book, account uint32, id uint64, want bool) iter.Seq[OrderInfo] {
	t.Helper()
	seq, ok := b.AccountOrdersAfter(account, id)
	if ok != want {
		t.Errorf("AccountOrdersAfter(%d, %d): found %v, want %v", account, id, ok, want)
	}
	return seq
}
