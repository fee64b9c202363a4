package book

import "testing"

func TestCancel(t *testing.T) {
	runCases(t, []bookCase{
		{
			name: "unknown order",
			cmds: []command{cancel(9)},
			want: []string{"Rejected id=9 reason=unknown order"},
		},
		{
			name:  "cancel a resting order",
			setup: []command{buy(1, 100, 5), buy(2, 100, 2)},
			cmds:  []command{cancel(1), cancel(1)},
			want: []string{
				"Cancelled id=1 qty=5 rem=0 reason=user",
				"Level buy px=100 qty=2",
				"Rejected id=1 reason=unknown order",
			},
		},
		{
			name: "cancel all cancels an account's orders oldest first",
			setup: []command{
				buy(1, 100, 5), sell(2, 105, 1, acc(2)), sell(3, 106, 2),
				stopOrder(4, Sell, 90, 1), buy(5, 100, 3, acc(2)),
			},
			cmds: []command{cancelAll(1), cancelAll(1)},
			want: []string{
				"Cancelled id=1 qty=5 rem=0 reason=user",
				"Level buy px=100 qty=3",
				"Cancelled id=3 qty=2 rem=0 reason=user",
				"Level sell px=106 qty=0",
				"Cancelled id=4 qty=1 rem=0 reason=user",
			},
		},
		{
			name:  "a cancelled id can be reused",
			setup: []command{buy(1, 100, 5), cancel(1)},
			cmds:  []command{buy(1, 101, 1)},
			want:  []string{"Accepted id=1 px=101 qty=1 rem=1", "Level buy px=101 qty=1"},
		},
	})
}

func TestAmend(t *testing.T) {
	runCases(t, []bookCase{
		{
			name:  "unknown order",
			cmds:  []command{amendQty(9, 1)},
			want:  []string{"Rejected id=9 reason=unknown order"},
			setup: nil,
		},
		{
			name:  "qty decrease at the same price keeps priority",
			setup: []command{buy(1, 100, 5), buy(2, 100, 5)},
			cmds:  []command{amendQty(1, 3), sell(3, 100, 3, acc(2))},
			want: []string{
				"Amended id=1 px=100 qty=3 rem=3",
				"Level buy px=100 qty=8",
				"Accepted id=3 px=100 qty=3 rem=3",
				"Trade taker=3 maker=1 px=100 qty=3 rem=0 mrem=0",
				"Level buy px=100 qty=5",
			},
		},
		{
			name:  "qty increase loses priority",
			setup: []command{buy(1, 100, 5), buy(2, 100, 5)},
			cmds:  []command{amendQty(1, 7), sell(3, 100, 3, acc(2))},
			want: []string{
				"Amended id=1 px=100 qty=7 rem=7",
				"Level buy px=100 qty=12",
				"Accepted id=3 px=100 qty=3 rem=3",
				"Trade taker=3 maker=2 px=100 qty=3 rem=0 mrem=2",
				"Level buy px=100 qty=9",
			},
		},
		{
			name:  "price change loses priority even back to the same level",
			setup: []command{buy(1, 100, 5), buy(2, 100, 5)},
			cmds:  []command{amendPrice(1, 99), amendPrice(1, 100), sell(3, 100, 3, acc(2))},
			want: []string{
				"Amended id=1 px=99 qty=5 rem=5",
				"Level buy px=100 qty=5",
				"Level buy px=99 qty=5",
				"Amended id=1 px=100 qty=5 rem=5",
				"Level buy px=99 qty=0",
				"Level buy px=100 qty=10",
				"Accepted id=3 px=100 qty=3 rem=3",
				"Trade taker=3 maker=2 px=100 qty=3 rem=0 mrem=2",
				"Level buy px=100 qty=7",
			},
		},
		{
			name:  "price change that crosses trades",
			setup: []command{buy(1, 99, 5), sell(2, 100, 3, acc(2))},
			cmds:  []command{amendPrice(1, 100)},
			want: []string{
				"Amended id=1 px=100 qty=5 rem=5",
				"Level buy px=99 qty=0",
				"Trade taker=1 maker=2 px=100 qty=3 rem=2 mrem=0",
				"Level sell px=100 qty=0",
				"Level buy px=100 qty=2",
			},
		},
		{
			name:  "qty at or below filled is rejected, above it leaves the difference",
			setup: []command{buy(1, 100, 5), sell(2, 100, 3, acc(2))},
			cmds:  []command{amendQty(1, 3), amendQty(1, 4)},
			want: []string{
				"Rejected id=1 reason=amend qty too low",
				"Amended id=1 px=100 qty=4 rem=1",
				"Level buy px=100 qty=1",
			},
		},
		{
			name:  "post-only amended across the spread is cancelled",
			setup: []command{buy(1, 99, 5, postOnly), sell(2, 100, 3, acc(2))},
			cmds:  []command{amendPrice(1, 100)},
			want: []string{
				"Amended id=1 px=100 qty=5 rem=5",
				"Level buy px=99 qty=0",
				"Cancelled id=1 qty=5 rem=0 reason=post-only",
			},
		},
		{
			name:  "invalid price, qty and trigger are rejected",
			setup: []command{buy(1, 99, 5)},
			cmds: []command{
				amendPrice(1, -1), amendPrice(1, 1001), amendQty(1, 1001), amendQty(1, -1),
				amend(Amend{ID: 1, TriggerPrice: 50}),
			},
			want: []string{
				"Rejected id=1 reason=invalid price",
				"Rejected id=1 reason=invalid price",
				"Rejected id=1 reason=invalid qty",
				"Rejected id=1 reason=invalid qty",
				"Rejected id=1 reason=invalid trigger price",
			},
		},
		{
			name:  "iceberg qty decrease trims the visible slice only when needed",
			setup: []command{sell(1, 100, 10, display(4))},
			cmds:  []command{amendQty(1, 6), amendQty(1, 3)},
			want: []string{
				"Amended id=1 px=100 qty=6 rem=6",
				"Amended id=1 px=100 qty=3 rem=3",
				"Level sell px=100 qty=3",
			},
		},
		{
			name:  "stop qty decrease keeps its trigger queue place",
			setup: []command{stopOrder(1, Buy, 110, 5), stopOrder(2, Buy, 110, 5)},
			cmds:  []command{amendQty(1, 2)},
			want:  []string{"Amended id=1 px=0 qty=2 rem=2"},
		},
		{
			name:  "market stop cannot get a limit price",
			setup: []command{stopOrder(1, Buy, 110, 5)},
			cmds:  []command{amendPrice(1, 100)},
			want:  []string{"Rejected id=1 reason=invalid price"},
		},
	})
}

func TestValidation(t *testing.T) {
	inst := testInstrument
	inst.MinQty = 2
	cases := []struct {
		name string
		cmd  command
		want Reason
	}{
		{"zero id", buy(0, 100, 5), RejectInvalidOrderID},
		{"zero side", buy(1, 100, 5, withSide(0)), RejectInvalidSide},
		{"bad side", buy(1, 100, 5, withSide(7)), RejectInvalidSide},
		{"bad type", buy(1, 100, 5, typ(9)), RejectInvalidType},
		{"bad tif", buy(1, 100, 5, tif(9)), RejectInvalidTIF},
		{"bad stp", buy(1, 100, 5, stp(9)), RejectInvalidSTP},
		{"zero price", buy(1, 0, 5), RejectInvalidPrice},
		{"negative price", buy(1, -5, 5), RejectInvalidPrice},
		{"price above max", buy(1, 1001, 5), RejectInvalidPrice},
		{"zero qty", buy(1, 100, 0), RejectInvalidQty},
		{"negative qty", buy(1, 100, -1), RejectInvalidQty},
		{"qty below min", buy(1, 100, 1), RejectInvalidQty},
		{"qty above max", buy(1, 100, 1001), RejectInvalidQty},
		{"negative display", buy(1, 100, 5, display(-1)), RejectInvalidDisplayQty},
		{"trigger above max", stopOrder(1, Buy, 1001, 5), RejectInvalidTriggerPrice},
		{"negative trigger", stopOrder(1, Buy, -1, 5), RejectInvalidTriggerPrice},
		{"post-only FOK", buy(1, 100, 5, postOnly, tif(FOK)), RejectInvalidPostOnly},
		{"post-only stop", stopOrder(1, Buy, 100, 5, postOnly), RejectInvalidPostOnly},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := New(inst)
			ev := run(t, b, tc.cmd)
			if len(ev) != 1 || ev[0].Kind != EventRejected || ev[0].Reason != tc.want {
				t.Fatalf("events %v, want one rejection for %v", eventStrings(ev), tc.want)
			}
			if b.Len() != 0 || b.Seq() != 1 {
				t.Fatalf("rejection changed the book: len %d seq %d", b.Len(), b.Seq())
			}
		})
	}
}
