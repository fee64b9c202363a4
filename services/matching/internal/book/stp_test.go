package book

import "testing"

func TestSelfTradePrevention(t *testing.T) {
	runCases(t, []bookCase{
		{
			name:  "cancel newest cancels the taker",
			setup: []command{sell(1, 100, 5, acc(1))},
			cmds:  []command{buy(2, 100, 5, acc(1), stp(STPCancelNewest))},
			want: []string{
				"Accepted id=2 px=100 qty=5 rem=5",
				"Cancelled id=2 qty=5 rem=0 reason=stp",
			},
		},
		{
			name:  "cancel newest keeps fills made before the own order",
			setup: []command{sell(1, 100, 2, acc(2)), sell(2, 100, 5, acc(1))},
			cmds:  []command{buy(3, 100, 5, acc(1))},
			want: []string{
				"Accepted id=3 px=100 qty=5 rem=5",
				"Trade taker=3 maker=1 px=100 qty=2 rem=3 mrem=0",
				"Cancelled id=3 qty=3 rem=0 reason=stp",
				"Level sell px=100 qty=5",
			},
		},
		{
			name:  "cancel oldest cancels the maker and the taker goes on",
			setup: []command{sell(1, 100, 5, acc(1)), sell(2, 100, 5, acc(2))},
			cmds:  []command{buy(3, 100, 5, acc(1), stp(STPCancelOldest))},
			want: []string{
				"Accepted id=3 px=100 qty=5 rem=5",
				"Cancelled id=1 qty=5 rem=0 reason=stp",
				"Trade taker=3 maker=2 px=100 qty=5 rem=0 mrem=0",
				"Level sell px=100 qty=0",
			},
		},
		{
			name:  "cancel both",
			setup: []command{sell(1, 100, 5, acc(1)), sell(2, 100, 5, acc(2))},
			cmds:  []command{buy(3, 100, 5, acc(1), stp(STPCancelBoth))},
			want: []string{
				"Accepted id=3 px=100 qty=5 rem=5",
				"Cancelled id=1 qty=5 rem=0 reason=stp",
				"Cancelled id=3 qty=5 rem=0 reason=stp",
				"Level sell px=100 qty=5",
			},
		},
		{
			name:  "decrement removes the smaller order and shrinks the taker",
			setup: []command{sell(1, 100, 3, acc(1)), sell(2, 100, 5, acc(2))},
			cmds:  []command{buy(3, 100, 5, acc(1), stp(STPDecrement))},
			want: []string{
				"Accepted id=3 px=100 qty=5 rem=5",
				"Cancelled id=1 qty=3 rem=0 reason=stp",
				"Cancelled id=3 qty=3 rem=2 reason=stp",
				"Trade taker=3 maker=2 px=100 qty=2 rem=0 mrem=3",
				"Level sell px=100 qty=3",
			},
		},
		{
			name:  "decrement shrinks a larger maker which keeps its place",
			setup: []command{sell(1, 100, 8, acc(1)), sell(2, 100, 1, acc(2))},
			cmds:  []command{buy(3, 100, 5, acc(1), stp(STPDecrement))},
			want: []string{
				"Accepted id=3 px=100 qty=5 rem=5",
				"Cancelled id=1 qty=5 rem=3 reason=stp",
				"Cancelled id=3 qty=5 rem=0 reason=stp",
				"Level sell px=100 qty=4",
			},
		},
		{
			name:  "decrement on an iceberg maker trims the visible slice",
			setup: []command{sell(1, 100, 10, acc(1), display(4))},
			cmds:  []command{buy(2, 100, 8, acc(1), stp(STPDecrement))},
			want: []string{
				"Accepted id=2 px=100 qty=8 rem=8",
				"Cancelled id=1 qty=8 rem=2 reason=stp",
				"Cancelled id=2 qty=8 rem=0 reason=stp",
				"Level sell px=100 qty=2",
			},
		},
		{
			name:  "allow lets an account trade with itself",
			setup: []command{sell(1, 100, 5, acc(1))},
			cmds:  []command{buy(2, 100, 5, acc(1), stp(STPAllow))},
			want: []string{
				"Accepted id=2 px=100 qty=5 rem=5",
				"Trade taker=2 maker=1 px=100 qty=5 rem=0 mrem=0",
				"Level sell px=100 qty=0",
			},
		},
		{
			name:  "other accounts are unaffected by the mode",
			setup: []command{sell(1, 100, 5, acc(2))},
			cmds:  []command{buy(2, 100, 5, acc(1), stp(STPCancelBoth))},
			want: []string{
				"Accepted id=2 px=100 qty=5 rem=5",
				"Trade taker=2 maker=1 px=100 qty=5 rem=0 mrem=0",
				"Level sell px=100 qty=0",
			},
		},
		{
			name:  "market order cancelled by STP",
			setup: []command{sell(1, 100, 5, acc(1))},
			cmds:  []command{marketOrder(2, Buy, 5, acc(1))},
			want: []string{
				"Accepted id=2 px=0 qty=5 rem=5",
				"Cancelled id=2 qty=5 rem=0 reason=stp",
			},
		},
	})
}
