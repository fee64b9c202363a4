package book

import "testing"

func TestStops(t *testing.T) {
	runCases(t, []bookCase{
		{
			name: "stop without trigger price is rejected",
			cmds: []command{stopOrder(1, Buy, 0, 5)},
			want: []string{"Rejected id=1 reason=missing trigger price"},
		},
		{
			name: "stop-limit without limit price is rejected",
			cmds: []command{stopLimit(1, Buy, 100, 0, 5)},
			want: []string{"Rejected id=1 reason=invalid price"},
		},
		{
			name: "pending stop is accepted and not in L2",
			cmds: []command{stopOrder(1, Buy, 100, 5)},
			want: []string{"Accepted id=1 px=0 qty=5 rem=5"},
		},
		{
			name: "buy stop triggers when last >= trigger and executes as market",
			setup: []command{
				sell(1, 100, 1, acc(2)), sell(2, 101, 5, acc(2)),
				stopOrder(3, Buy, 100, 2, acc(3)),
			},
			cmds: []command{buy(4, 100, 1)},
			want: []string{
				"Accepted id=4 px=100 qty=1 rem=1",
				"Trade taker=4 maker=1 px=100 qty=1 rem=0 mrem=0",
				"Triggered id=3 px=100",
				"Level sell px=100 qty=0",
				"Trade taker=3 maker=2 px=101 qty=2 rem=0 mrem=3",
				"Level sell px=101 qty=3",
			},
		},
		{
			name: "buy stop below the trade price does not wait for an exact hit",
			setup: []command{
				sell(1, 105, 1, acc(2)), sell(2, 106, 5, acc(2)),
				stopOrder(3, Buy, 101, 1, acc(3)),
			},
			cmds: []command{buy(4, 105, 1)},
			want: []string{
				"Accepted id=4 px=105 qty=1 rem=1",
				"Trade taker=4 maker=1 px=105 qty=1 rem=0 mrem=0",
				"Triggered id=3 px=101",
				"Level sell px=105 qty=0",
				"Trade taker=3 maker=2 px=106 qty=1 rem=0 mrem=4",
				"Level sell px=106 qty=4",
			},
		},
		{
			name: "sell stop does not trigger above its price",
			setup: []command{
				sell(1, 100, 1, acc(2)),
				stopOrder(2, Sell, 99, 1, acc(3)),
			},
			cmds: []command{buy(3, 100, 1)},
			want: []string{
				"Accepted id=3 px=100 qty=1 rem=1",
				"Trade taker=3 maker=1 px=100 qty=1 rem=0 mrem=0",
				"Level sell px=100 qty=0",
			},
		},
		{
			name: "sell stop-limit triggers when last <= trigger and rests",
			setup: []command{
				buy(1, 100, 1, acc(2)),
				stopLimit(2, Sell, 100, 99, 3, acc(3)),
			},
			cmds: []command{sell(3, 100, 1)},
			want: []string{
				"Accepted id=3 px=100 qty=1 rem=1",
				"Trade taker=3 maker=1 px=100 qty=1 rem=0 mrem=0",
				"Triggered id=2 px=100",
				"Level buy px=100 qty=0",
				"Level sell px=99 qty=3",
			},
		},
		{
			name: "cascade: triggered stops trigger further stops",
			setup: []command{
				sell(1, 100, 1, acc(9)), sell(2, 101, 1, acc(9)), sell(3, 102, 1, acc(9)), sell(4, 103, 5, acc(9)),
				stopOrder(5, Buy, 100, 1, acc(5)),
				stopOrder(6, Buy, 101, 1, acc(6)),
				stopOrder(7, Buy, 104, 1, acc(7)),
			},
			cmds: []command{buy(8, 100, 1)},
			want: []string{
				"Accepted id=8 px=100 qty=1 rem=1",
				"Trade taker=8 maker=1 px=100 qty=1 rem=0 mrem=0",
				"Triggered id=5 px=100",
				"Level sell px=100 qty=0",
				"Trade taker=5 maker=2 px=101 qty=1 rem=0 mrem=0",
				"Triggered id=6 px=101",
				"Level sell px=101 qty=0",
				"Trade taker=6 maker=3 px=102 qty=1 rem=0 mrem=0",
				"Level sell px=102 qty=0",
			},
		},
		{
			name: "stops reached together fire lowest trigger first, FIFO within a price",
			setup: []command{
				sell(1, 100, 1, acc(9)), sell(2, 101, 9, acc(9)),
				stopOrder(3, Buy, 100, 1, acc(3)),
				stopOrder(4, Buy, 99, 1, acc(4)),
				stopOrder(5, Buy, 100, 1, acc(5)),
			},
			cmds: []command{buy(6, 100, 1)},
			want: []string{
				"Accepted id=6 px=100 qty=1 rem=1",
				"Trade taker=6 maker=1 px=100 qty=1 rem=0 mrem=0",
				"Triggered id=4 px=99",
				"Triggered id=3 px=100",
				"Triggered id=5 px=100",
				"Level sell px=100 qty=0",
				"Trade taker=4 maker=2 px=101 qty=1 rem=0 mrem=8",
				"Level sell px=101 qty=8",
				"Trade taker=3 maker=2 px=101 qty=1 rem=0 mrem=7",
				"Level sell px=101 qty=7",
				"Trade taker=5 maker=2 px=101 qty=1 rem=0 mrem=6",
				"Level sell px=101 qty=6",
			},
		},
		{
			name: "stop whose trigger is already reached fires at once",
			setup: []command{
				sell(1, 100, 1, acc(2)), buy(2, 100, 1), sell(3, 101, 2, acc(2)),
			},
			cmds: []command{stopOrder(4, Buy, 99, 1, acc(3))},
			want: []string{
				"Accepted id=4 px=0 qty=1 rem=1",
				"Triggered id=4 px=99",
				"Trade taker=4 maker=3 px=101 qty=1 rem=0 mrem=1",
				"Level sell px=101 qty=1",
			},
		},
		{
			name:  "no trade yet means no trigger",
			setup: []command{sell(1, 100, 1, acc(2))},
			cmds:  []command{stopOrder(2, Sell, 1000, 1, acc(3))},
			want:  []string{"Accepted id=2 px=0 qty=1 rem=1"},
		},
		{
			name: "triggered stop-market facing an empty book is cancelled",
			setup: []command{
				sell(1, 100, 1, acc(2)),
				stopOrder(2, Buy, 100, 1, acc(3)),
			},
			cmds: []command{buy(3, 100, 1)},
			want: []string{
				"Accepted id=3 px=100 qty=1 rem=1",
				"Trade taker=3 maker=1 px=100 qty=1 rem=0 mrem=0",
				"Triggered id=2 px=100",
				"Level sell px=100 qty=0",
				"Cancelled id=2 qty=1 rem=0 reason=no liquidity",
			},
		},
		{
			name: "triggered post-only stop-limit that would cross is cancelled",
			setup: []command{
				sell(1, 100, 1, acc(2)), sell(2, 101, 1, acc(2)),
				stopLimit(3, Buy, 100, 101, 1, acc(3), postOnly),
			},
			cmds: []command{buy(4, 100, 1)},
			want: []string{
				"Accepted id=4 px=100 qty=1 rem=1",
				"Trade taker=4 maker=1 px=100 qty=1 rem=0 mrem=0",
				"Triggered id=3 px=100",
				"Level sell px=100 qty=0",
				"Cancelled id=3 qty=1 rem=0 reason=post-only",
			},
		},
		{
			name: "triggered FOK stop that cannot fill is cancelled",
			setup: []command{
				sell(1, 100, 1, acc(2)), sell(2, 101, 1, acc(2)),
				stopOrder(3, Buy, 100, 5, acc(3), tif(FOK)),
			},
			cmds: []command{buy(4, 100, 1)},
			want: []string{
				"Accepted id=4 px=100 qty=1 rem=1",
				"Trade taker=4 maker=1 px=100 qty=1 rem=0 mrem=0",
				"Triggered id=3 px=100",
				"Level sell px=100 qty=0",
				"Cancelled id=3 qty=5 rem=0 reason=fok",
			},
		},
		{
			name:  "cancel a pending stop",
			setup: []command{stopOrder(1, Sell, 90, 5)},
			cmds:  []command{cancel(1)},
			want:  []string{"Cancelled id=1 qty=5 rem=0 reason=user"},
		},
		{
			name: "amend a stop trigger to a reached price fires it",
			setup: []command{
				sell(1, 100, 1, acc(2)), buy(2, 100, 1), sell(3, 101, 5, acc(2)),
				stopOrder(4, Buy, 120, 2, acc(3)),
			},
			cmds: []command{amend(Amend{ID: 4, TriggerPrice: 100})},
			want: []string{
				"Amended id=4 px=0 qty=2 rem=2",
				"Triggered id=4 px=100",
				"Trade taker=4 maker=3 px=101 qty=2 rem=0 mrem=3",
				"Level sell px=101 qty=3",
			},
		},
	})
}

// A sell stop that a buy sweep passes through triggers at the trade that
// reached it, even though the final price has moved back above it.
func TestStopTriggersOnIntermediateTrade(t *testing.T) {
	for _, kind := range indexKinds {
		b := newBook(testInstrument, kind)
		run(t, b,
			sell(1, 100, 1, acc(2)), buy(2, 100, 1), // last = 100
			sell(3, 99, 1, acc(2)), // an ask below the last price
			stopOrder(4, Sell, 99, 1, acc(4)),
			sell(5, 101, 1, acc(2)),
		)
		got := eventStrings(run(t, b, buy(6, 101, 2)))
		want := []string{
			"Accepted id=6 px=101 qty=2 rem=2",
			"Trade taker=6 maker=3 px=99 qty=1 rem=1 mrem=0",
			"Triggered id=4 px=99",
			"Level sell px=99 qty=0",
			"Trade taker=6 maker=5 px=101 qty=1 rem=0 mrem=0",
			"Level sell px=101 qty=0",
			"Cancelled id=4 qty=1 rem=0 reason=no liquidity",
		}
		if d := diffLines(got, want); d != "" {
			t.Fatalf("%v:\n%s", kind, d)
		}
	}
}
