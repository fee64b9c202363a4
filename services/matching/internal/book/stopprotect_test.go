package book

import "testing"

func protect(px int64) opt { return func(o *NewOrder) { o.Price = px } }

// TestProtectedStop: a Stop with a Price is a stop-market order with a protection: once triggered
// it trades at that price or better and never rests, whatever its TIF; while it waits, GTD/DAY
// bound the wait. This is what the exchange's STOP orders are.
func TestProtectedStop(t *testing.T) {
	runCases(t, []bookCase{
		{
			name: "triggered GTD stop trades to its protection and cancels the rest",
			setup: []command{
				sell(1, 100, 1, acc(2)), sell(2, 101, 2, acc(2)), sell(3, 103, 5, acc(2)),
				stopOrder(4, Buy, 100, 5, acc(3), gtd(5000), protect(102)),
			},
			cmds: []command{buy(5, 100, 1)},
			want: []string{
				"Accepted id=5 px=100 qty=1 rem=1",
				"Trade taker=5 maker=1 px=100 qty=1 rem=0 mrem=0",
				"Triggered id=4 px=100",
				"Level sell px=100 qty=0",
				"Trade taker=4 maker=2 px=101 qty=2 rem=3 mrem=0",
				"Level sell px=101 qty=0",
				"Cancelled id=4 qty=3 rem=0 reason=market remainder",
			},
		},
		{
			name:  "pending GTD stop with protection expires",
			setup: []command{stopOrder(1, Sell, 90, 5, gtd(2000), protect(85))},
			cmds:  []command{expire(1999), expire(2000)},
			want:  []string{"Cancelled id=1 qty=5 rem=0 reason=expired"},
		},
		{
			name:  "pending DAY stop with protection expires",
			setup: []command{stopOrder(1, Buy, 110, 5, tif(DAY), expireAt(3000), protect(115))},
			cmds:  []command{expire(3000)},
			want:  []string{"Cancelled id=1 qty=5 rem=0 reason=expired"},
		},
		{
			name: "the protection price of a pending stop can be amended",
			setup: []command{
				sell(1, 100, 1, acc(2)), sell(2, 104, 2, acc(2)),
				stopOrder(3, Buy, 100, 2, acc(3), gtd(5000), protect(102)),
			},
			cmds: []command{amendPrice(3, 104), buy(4, 100, 1)},
			want: []string{
				"Amended id=3 px=104 qty=2 rem=2",
				"Accepted id=4 px=100 qty=1 rem=1",
				"Trade taker=4 maker=1 px=100 qty=1 rem=0 mrem=0",
				"Triggered id=3 px=100",
				"Level sell px=100 qty=0",
				"Trade taker=3 maker=2 px=104 qty=2 rem=0 mrem=0",
				"Level sell px=104 qty=0",
			},
		},
		{
			name: "an out-of-range protection is refused",
			cmds: []command{stopOrder(1, Buy, 100, 5, protect(1001))},
			want: []string{"Rejected id=1 reason=invalid price"},
		},
	})
}

// TestProtectedStopSurvivesSnapshot: a pending stop keeps its protection and expiry through
// Snapshot and Restore.
func TestProtectedStopSurvivesSnapshot(t *testing.T) {
	for _, kind := range indexKinds {
		b := newBook(testInstrument, kind)
		run(t, b, stopOrder(1, Sell, 90, 5, gtd(2000), protect(85)))
		snap := b.AppendSnapshot(nil)
		r := newBook(testInstrument, kind)
		if err := r.Restore(snap); err != nil {
			t.Fatalf("%v: restore: %v", kind, err)
		}
		if got := r.AppendSnapshot(nil); string(got) != string(snap) {
			t.Fatalf("%v: snapshot differs after restore", kind)
		}
		got := eventStrings(run(t, r, expire(2000)))
		if d := diffLines(got, []string{"Cancelled id=1 qty=5 rem=0 reason=expired"}); d != "" {
			t.Fatalf("%v: after restore:\n%s", kind, d)
		}
	}
}
