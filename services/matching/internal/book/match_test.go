package book

import "testing"

func TestCrossingAndPriority(t *testing.T) {
	runCases(t, []bookCase{
		{
			name: "limit rests",
			cmds: []command{buy(1, 100, 5)},
			want: []string{"Accepted id=1 px=100 qty=5 rem=5", "Level buy px=100 qty=5"},
		},
		{
			name: "non-crossing orders rest on both sides",
			cmds: []command{buy(1, 99, 5), sell(2, 100, 4, acc(2))},
			want: []string{
				"Accepted id=1 px=99 qty=5 rem=5", "Level buy px=99 qty=5",
				"Accepted id=2 px=100 qty=4 rem=4", "Level sell px=100 qty=4",
			},
		},
		{
			name:  "full fill at the maker price",
			setup: []command{sell(1, 100, 5, acc(2))},
			cmds:  []command{buy(2, 101, 5)},
			want: []string{
				"Accepted id=2 px=101 qty=5 rem=5",
				"Trade taker=2 maker=1 px=100 qty=5 rem=0 mrem=0",
				"Level sell px=100 qty=0",
			},
		},
		{
			name:  "partial fill rests the remainder",
			setup: []command{sell(1, 100, 3, acc(2))},
			cmds:  []command{buy(2, 101, 5)},
			want: []string{
				"Accepted id=2 px=101 qty=5 rem=5",
				"Trade taker=2 maker=1 px=100 qty=3 rem=2 mrem=0",
				"Level sell px=100 qty=0",
				"Level buy px=101 qty=2",
			},
		},
		{
			name:  "taker partially fills the maker",
			setup: []command{sell(1, 100, 8, acc(2))},
			cmds:  []command{buy(2, 100, 5)},
			want: []string{
				"Accepted id=2 px=100 qty=5 rem=5",
				"Trade taker=2 maker=1 px=100 qty=5 rem=0 mrem=3",
				"Level sell px=100 qty=3",
			},
		},
		{
			name:  "buy sweeps price then time priority",
			setup: []command{sell(1, 101, 2, acc(2)), sell(2, 100, 2, acc(2)), sell(3, 100, 2, acc(3))},
			cmds:  []command{buy(4, 101, 5)},
			want: []string{
				"Accepted id=4 px=101 qty=5 rem=5",
				"Trade taker=4 maker=2 px=100 qty=2 rem=3 mrem=0",
				"Trade taker=4 maker=3 px=100 qty=2 rem=1 mrem=0",
				"Level sell px=100 qty=0",
				"Trade taker=4 maker=1 px=101 qty=1 rem=0 mrem=1",
				"Level sell px=101 qty=1",
			},
		},
		{
			name:  "sell sweeps bids from the highest",
			setup: []command{buy(1, 100, 2, acc(2)), buy(2, 99, 2, acc(2)), buy(3, 98, 2, acc(2))},
			cmds:  []command{sell(4, 99, 5)},
			want: []string{
				"Accepted id=4 px=99 qty=5 rem=5",
				"Trade taker=4 maker=1 px=100 qty=2 rem=3 mrem=0",
				"Level buy px=100 qty=0",
				"Trade taker=4 maker=2 px=99 qty=2 rem=1 mrem=0",
				"Level buy px=99 qty=0",
				"Level sell px=99 qty=1",
			},
		},
		{
			name:  "duplicate id of an open order is rejected",
			setup: []command{buy(1, 100, 5)},
			cmds:  []command{sell(1, 105, 5)},
			want:  []string{"Rejected id=1 reason=duplicate order id"},
		},
	})
}

func TestTimeInForce(t *testing.T) {
	runCases(t, []bookCase{
		{
			name:  "IOC cancels the unfilled remainder",
			setup: []command{sell(1, 100, 3, acc(2))},
			cmds:  []command{buy(2, 100, 5, tif(IOC))},
			want: []string{
				"Accepted id=2 px=100 qty=5 rem=5",
				"Trade taker=2 maker=1 px=100 qty=3 rem=2 mrem=0",
				"Level sell px=100 qty=0",
				"Cancelled id=2 qty=2 rem=0 reason=ioc remainder",
			},
		},
		{
			name:  "IOC that does not cross is cancelled whole",
			setup: []command{sell(1, 100, 3, acc(2))},
			cmds:  []command{buy(2, 99, 5, tif(IOC))},
			want:  []string{"Accepted id=2 px=99 qty=5 rem=5", "Cancelled id=2 qty=5 rem=0 reason=ioc remainder"},
		},
		{
			name:  "FOK that cannot fill is rejected untouched",
			setup: []command{sell(1, 100, 3, acc(2)), sell(2, 102, 3, acc(2))},
			cmds:  []command{buy(3, 101, 5, tif(FOK))},
			want:  []string{"Rejected id=3 reason=fok cannot fill"},
		},
		{
			name:  "FOK fills across levels",
			setup: []command{sell(1, 100, 3, acc(2)), sell(2, 101, 3, acc(2))},
			cmds:  []command{buy(3, 101, 5, tif(FOK))},
			want: []string{
				"Accepted id=3 px=101 qty=5 rem=5",
				"Trade taker=3 maker=1 px=100 qty=3 rem=2 mrem=0",
				"Level sell px=100 qty=0",
				"Trade taker=3 maker=2 px=101 qty=2 rem=0 mrem=1",
				"Level sell px=101 qty=1",
			},
		},
		{
			name:  "FOK counts hidden iceberg quantity",
			setup: []command{sell(1, 100, 10, acc(2), display(2))},
			cmds:  []command{buy(2, 100, 6, tif(FOK))},
			want: []string{
				"Accepted id=2 px=100 qty=6 rem=6",
				"Trade taker=2 maker=1 px=100 qty=2 rem=4 mrem=8",
				"Trade taker=2 maker=1 px=100 qty=2 rem=2 mrem=6",
				"Trade taker=2 maker=1 px=100 qty=2 rem=0 mrem=4",
			},
		},
		{
			name: "FOK blocked by an own order the iceberg refreshes behind",
			setup: []command{
				sell(1, 100, 10, acc(2), display(2)),
				sell(2, 100, 5, acc(1)),
			},
			cmds: []command{buy(3, 100, 4, tif(FOK), stp(STPCancelNewest))},
			want: []string{"Rejected id=3 reason=fok cannot fill"},
		},
		{
			name:  "FOK skips own orders that STPCancelOldest removes",
			setup: []command{sell(1, 100, 5, acc(1)), sell(2, 100, 5, acc(2))},
			cmds:  []command{buy(3, 100, 5, tif(FOK), stp(STPCancelOldest))},
			want: []string{
				"Accepted id=3 px=100 qty=5 rem=5",
				"Cancelled id=1 qty=5 rem=0 reason=stp",
				"Trade taker=3 maker=2 px=100 qty=5 rem=0 mrem=0",
				"Level sell px=100 qty=0",
			},
		},
		{
			name:  "GTD expires at its time, not before",
			setup: []command{buy(1, 100, 5, gtd(2000)), buy(2, 100, 1)},
			cmds:  []command{expire(1999), expire(2000)},
			want: []string{
				"Cancelled id=1 qty=5 rem=0 reason=expired",
				"Level buy px=100 qty=1",
			},
		},
		{
			name: "DAY orders expire at the session end in acceptance order",
			setup: []command{
				buy(1, 100, 5, tif(DAY), expireAt(5000)),
				buy(2, 99, 1),
				sell(3, 110, 2, tif(DAY), expireAt(5000)),
			},
			cmds: []command{expire(6000)},
			want: []string{
				"Cancelled id=1 qty=5 rem=0 reason=expired",
				"Level buy px=100 qty=0",
				"Cancelled id=3 qty=2 rem=0 reason=expired",
				"Level sell px=110 qty=0",
			},
		},
		{
			name:  "earlier expiry goes first whatever the acceptance order",
			setup: []command{buy(1, 100, 5, gtd(3000)), buy(2, 99, 5, gtd(2000))},
			cmds:  []command{expire(3000)},
			want: []string{
				"Cancelled id=2 qty=5 rem=0 reason=expired",
				"Level buy px=99 qty=0",
				"Cancelled id=1 qty=5 rem=0 reason=expired",
				"Level buy px=100 qty=0",
			},
		},
		{
			name:  "pending stop expires",
			setup: []command{stopOrder(1, Buy, 110, 5, gtd(2000))},
			cmds:  []command{expire(2500)},
			want:  []string{"Cancelled id=1 qty=5 rem=0 reason=expired"},
		},
		{
			name: "GTD in the past is rejected",
			cmds: []command{buy(1, 100, 5, tif(GTD), expireAt(1000), now(1000))},
			want: []string{"Rejected id=1 reason=invalid expiry"},
		},
		{
			name: "DAY without a session end is rejected",
			cmds: []command{buy(1, 100, 5, tif(DAY))},
			want: []string{"Rejected id=1 reason=invalid expiry"},
		},
		{
			name:  "filled GTD order leaves the expiry queue",
			setup: []command{sell(1, 100, 5, gtd(2000), acc(2)), buy(2, 100, 5)},
			cmds:  []command{expire(3000)},
			want:  nil,
		},
	})
}

func TestMarketAndPostOnly(t *testing.T) {
	runCases(t, []bookCase{
		{
			name: "market order without liquidity is rejected",
			cmds: []command{marketOrder(1, Buy, 5)},
			want: []string{"Rejected id=1 reason=no liquidity"},
		},
		{
			name:  "market remainder is cancelled, not rested",
			setup: []command{sell(1, 100, 3, acc(2))},
			cmds:  []command{marketOrder(2, Buy, 5)},
			want: []string{
				"Accepted id=2 px=0 qty=5 rem=5",
				"Trade taker=2 maker=1 px=100 qty=3 rem=2 mrem=0",
				"Level sell px=100 qty=0",
				"Cancelled id=2 qty=2 rem=0 reason=market remainder",
			},
		},
		{
			name:  "market sell sweeps any price",
			setup: []command{buy(1, 100, 1, acc(2)), buy(2, 3, 1, acc(2))},
			cmds:  []command{marketOrder(3, Sell, 2)},
			want: []string{
				"Accepted id=3 px=0 qty=2 rem=2",
				"Trade taker=3 maker=1 px=100 qty=1 rem=1 mrem=0",
				"Level buy px=100 qty=0",
				"Trade taker=3 maker=2 px=3 qty=1 rem=0 mrem=0",
				"Level buy px=3 qty=0",
			},
		},
		{
			name:  "market FOK that cannot fill is rejected",
			setup: []command{sell(1, 100, 3, acc(2))},
			cmds:  []command{marketOrder(2, Buy, 5, tif(FOK))},
			want:  []string{"Rejected id=2 reason=fok cannot fill"},
		},
		{
			name:  "post-only that would cross is rejected and nothing rests",
			setup: []command{sell(1, 100, 3, acc(2))},
			cmds:  []command{buy(2, 100, 5, postOnly)},
			want:  []string{"Rejected id=2 reason=post-only would cross"},
		},
		{
			name:  "post-only that does not cross rests",
			setup: []command{sell(1, 100, 3, acc(2))},
			cmds:  []command{buy(2, 99, 5, postOnly)},
			want:  []string{"Accepted id=2 px=99 qty=5 rem=5", "Level buy px=99 qty=5"},
		},
		{
			name: "post-only with IOC is invalid",
			cmds: []command{buy(2, 99, 5, postOnly, tif(IOC))},
			want: []string{"Rejected id=2 reason=invalid post-only"},
		},
		{
			name: "post-only market is invalid",
			cmds: []command{marketOrder(2, Buy, 5, postOnly)},
			want: []string{"Rejected id=2 reason=invalid post-only"},
		},
	})
}

func TestIceberg(t *testing.T) {
	runCases(t, []bookCase{
		{
			name: "only the display quantity is visible",
			cmds: []command{sell(1, 100, 10, display(3))},
			want: []string{"Accepted id=1 px=100 qty=10 rem=10", "Level sell px=100 qty=3"},
		},
		{
			name:  "refreshed slice goes behind later orders",
			setup: []command{sell(1, 100, 10, acc(2), display(3)), sell(2, 100, 4, acc(3))},
			cmds:  []command{buy(3, 100, 3), buy(4, 100, 5)},
			want: []string{
				"Accepted id=3 px=100 qty=3 rem=3",
				"Trade taker=3 maker=1 px=100 qty=3 rem=0 mrem=7",
				// visible total stays 7: the new slice replaces the old one
				"Accepted id=4 px=100 qty=5 rem=5",
				"Trade taker=4 maker=2 px=100 qty=4 rem=1 mrem=0",
				"Trade taker=4 maker=1 px=100 qty=1 rem=0 mrem=6",
				"Level sell px=100 qty=2",
			},
		},
		{
			name:  "last slice shows what is left",
			setup: []command{sell(1, 100, 5, acc(2), display(3))},
			cmds:  []command{buy(2, 100, 3)},
			want: []string{
				"Accepted id=2 px=100 qty=3 rem=3",
				"Trade taker=2 maker=1 px=100 qty=3 rem=0 mrem=2",
				"Level sell px=100 qty=2",
			},
		},
		{
			name: "display larger than qty is invalid",
			cmds: []command{sell(1, 100, 5, display(6))},
			want: []string{"Rejected id=1 reason=invalid display qty"},
		},
		{
			name: "market iceberg is invalid",
			cmds: []command{marketOrder(1, Buy, 5, display(2))},
			want: []string{"Rejected id=1 reason=invalid display qty"},
		},
	})
}

func TestIcebergRefreshQueuePosition(t *testing.T) {
	for _, kind := range indexKinds {
		b := newBook(testInstrument, kind)
		run(t, b, sell(1, 100, 10, acc(2), display(3)), sell(2, 100, 4, acc(3)), buy(3, 100, 3))
		var ids []uint64
		for o := range b.Orders(Sell) {
			ids = append(ids, o.ID)
		}
		if len(ids) != 2 || ids[0] != 2 || ids[1] != 1 {
			t.Fatalf("%v: queue after refresh = %v, want [2 1]", kind, ids)
		}
		o, _ := b.Order(1)
		if o.Visible != 3 || o.Remaining != 7 || o.Filled != 3 {
			t.Fatalf("%v: iceberg after refresh %+v", kind, o)
		}
	}
}
