package exchange

import (
	"fmt"
	"math/big"
	"testing"

	"github.com/bourse-dev/bourse/services/matching/internal/book"
	"github.com/shopspring/decimal"
)

// expectNotional computes Σ price × qty of fills with decimals, independently of Notional.
func expectNotional(spec *Spec, fills []Fill) decimal.Decimal {
	sum := decimal.Zero
	for _, f := range fills {
		sum = sum.Add(decimal.RequireFromString(spec.FormatPrice(f.Price)).Mul(decimal.RequireFromString(spec.FormatQty(f.Qty))))
	}
	return sum
}

func sameNotional(t *testing.T, what string, spec *Spec, got Notional, want decimal.Decimal) {
	t.Helper()
	s := spec.FormatNotional(got)
	d, err := decimal.NewFromString(s)
	if err != nil || !d.Equal(want) {
		t.Fatalf("%s: filled notional %q, want %s", what, s, want)
	}
	if exp := -d.Exponent(); exp > int32(spec.PriceScale+spec.QtyScale) {
		t.Fatalf("%s: %q has more decimals than the price × quantity scale %d", what, s, spec.PriceScale+spec.QtyScale)
	}
}

// TestFilledNotionalSurvivesRestart: a taker sweeping two levels and both makers carry Σ price × qty
// of their fills in every answer, and the same after a restart by journal replay and from a snapshot.
func TestFilledNotionalSurvivesRestart(t *testing.T) {
	for _, every := range []int{0, 1} {
		t.Run(fmt.Sprintf("snapshot-every-%d", every), func(t *testing.T) {
			dir := t.TempDir()
			risk := newFakeRisk()
			x := openTest(t, dir, risk, func(c *Config) { c.SnapshotEvery = every })
			spec := addSymbol(t, x, "BTC-USD")
			s1 := submit(t, x, limit("alice", "s1", book.Sell, 10000, 5))
			s2 := submit(t, x, limit("carol", "s2", book.Sell, 10057, 7))
			buy := submit(t, x, limit("bob", "b1", book.Buy, 10100, 9))
			if buy.Err != nil || len(buy.Fills) != 2 {
				t.Fatalf("sweeping buy: %+v", buy)
			}
			if !s1.Order.FilledNotional.IsZero() {
				t.Fatalf("a resting order with no fill has notional %+v", s1.Order.FilledNotional)
			}
			wantBuy := expectNotional(spec, buy.Fills)
			sameNotional(t, "taker's answer", spec, buy.Order.FilledNotional, wantBuy)
			owner := map[uint64]string{buy.Order.ID: "bob", s1.Order.ID: "alice", s2.Order.ID: "carol"}
			get := func(x *Exchange, id uint64) Order {
				r := call(t, func(d func(Result)) { x.GetOrder(OrderRef{Account: owner[id], Symbol: "BTC-USD", OrderID: id}, d) })
				if r.Err != nil {
					t.Fatalf("get %d: %v", id, r.Err)
				}
				return r.Order
			}
			want := map[uint64]decimal.Decimal{
				buy.Order.ID: wantBuy,
				s1.Order.ID:  expectNotional(spec, buy.Fills[:1]),
				s2.Order.ID:  expectNotional(spec, buy.Fills[1:]),
			}
			for id, w := range want {
				sameNotional(t, fmt.Sprintf("live order %d", id), spec, get(x, id).FilledNotional, w)
			}
			waitSettled(t, x)
			closeTest(t, x)

			y := openTest(t, dir, risk, func(c *Config) { c.SnapshotEvery = every })
			defer closeTest(t, y)
			for id, w := range want {
				sameNotional(t, fmt.Sprintf("order %d after restart", id), spec, get(y, id).FilledNotional, w)
			}
		})
	}
}

// TestFilledNotionalIsExactBeyondInt64: prices and quantities reach 2^50 each, so the sum is 128-bit
// and formatting must not wrap.
func TestFilledNotionalIsExactBeyondInt64(t *testing.T) {
	spec := &Spec{TickUnits: 3, LotUnits: 7, PriceScale: 2, QtyScale: 4}
	var n Notional
	want := new(big.Int)
	for _, f := range [][2]int64{{book.DefaultMaxPrice, book.DefaultMaxQty}, {book.DefaultMaxPrice - 1, book.DefaultMaxQty}, {5, 9}} {
		n.add(f[0], f[1])
		want.Add(want, new(big.Int).Mul(big.NewInt(f[0]), big.NewInt(f[1])))
	}
	want.Mul(want, big.NewInt(3*7))
	if got, w := spec.FormatNotional(n), decimal.NewFromBigInt(want, -6).String(); got != w {
		t.Fatalf("FormatNotional = %s, want %s", got, w)
	}
	var small Notional
	small.add(12345, 6)
	if got := spec.FormatNotional(small); got != "1.55547" { // 12345×6×21 = 1555470 at scale 6
		t.Fatalf("FormatNotional small = %s", got)
	}
}

// TestSnapshotVersion1IsRead: a snapshot written before the notional was recorded still restores,
// every other field intact and the notional zero; the current version keeps it.
func TestSnapshotVersion1IsRead(t *testing.T) {
	x := openTest(t, t.TempDir(), newFakeRisk())
	defer closeTest(t, x)
	addSymbol(t, x, "BTC-USD")
	submit(t, x, limit("alice", "s1", book.Sell, 10000, 5))
	if r := submit(t, x, limit("bob", "b1", book.Buy, 10000, 2)); r.Err != nil || len(r.Fills) != 1 {
		t.Fatalf("buy: %+v", r)
	}
	var st *shardState
	for _, sh := range x.shards {
		done := make(chan *shardState, 1)
		if err := sh.enqueue(command{kind: cmdQuery, query: func(*output) { done <- sh.captureState() }}); err != nil {
			t.Fatal(err)
		}
		if s := <-done; len(s.Markets) > 0 {
			st = s
		}
	}
	if st == nil || len(st.Markets[0].Orders) != 2 {
		t.Fatalf("captured state: %+v", st)
	}
	for _, magic := range []string{snapshotMagicV1, snapshotMagic} {
		data, err := st.encodeAs(magic)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeShardState(data)
		if err != nil {
			t.Fatalf("%s: %v", magic, err)
		}
		for i, o := range back.Markets[0].Orders {
			want := st.Markets[0].Orders[i]
			// The snapshot carries these in the exported copies; decodeState moves them back.
			want.reservation, want.reservePrice, want.acct = 0, 0, 0
			if magic == snapshotMagicV1 {
				if !o.FilledNotional.IsZero() {
					t.Fatalf("v1 order %d has notional %+v", o.ID, o.FilledNotional)
				}
				want.FilledNotional = Notional{}
			} else if want.FilledNotional.IsZero() {
				t.Fatalf("order %d was filled but captured without notional", want.ID)
			}
			if o != want {
				t.Fatalf("%s: order %d decoded as %+v, want %+v", magic, o.ID, o, want)
			}
		}
	}
}
