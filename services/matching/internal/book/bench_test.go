package book

import (
	"math/bits"
	"math/rand/v2"
	"testing"
	"time"
)

// benchOp is a compact pre-generated command, so that generating the
// stream is outside the timed loop and the stream fits in memory.
type benchOp struct {
	id      uint64
	price   int64
	qty     int64
	account uint32
	kind    cmdKind
	side    Side
	tif     TimeInForce
}

func (op *benchOp) apply(b *Book, ev []Event) []Event {
	switch op.kind {
	case cmdSubmit:
		return b.Submit(ev, NewOrder{ID: op.id, Account: op.account, Side: op.side, TIF: op.tif, Price: op.price, Qty: op.qty})
	case cmdCancel:
		return b.Cancel(ev, op.id)
	default:
		return b.Amend(ev, Amend{ID: op.id, Price: op.price})
	}
}

var benchInstrument = Instrument{TickSize: 1, LotSize: 1, MinQty: 1, MaxQty: 1 << 30, MaxPrice: 1 << 40}

// liveSet tracks the ids of open orders during stream generation.
type liveSet struct {
	ids []uint64
	pos map[uint64]int
}

func newLiveSet() *liveSet { return &liveSet{pos: map[uint64]int{}} }

func (s *liveSet) add(id uint64) {
	if _, ok := s.pos[id]; !ok {
		s.pos[id] = len(s.ids)
		s.ids = append(s.ids, id)
	}
}

func (s *liveSet) remove(id uint64) {
	i, ok := s.pos[id]
	if !ok {
		return
	}
	last := s.ids[len(s.ids)-1]
	s.ids[i] = last
	s.pos[last] = i
	s.ids = s.ids[:len(s.ids)-1]
	delete(s.pos, id)
}

func (s *liveSet) pick(rng *rand.Rand) uint64 { return s.ids[rng.IntN(len(s.ids))] }

// sync updates the live set from a command's events, using the oracle
// book to learn whether orders are still open.
func (s *liveSet) sync(oracle *Book, events []Event) {
	for _, e := range events {
		for _, id := range [2]uint64{e.OrderID, e.MakerID} {
			if id == 0 {
				continue
			}
			if _, open := oracle.Order(id); open {
				s.add(id)
			} else {
				s.remove(id)
			}
		}
	}
}

// addCancelStream generates non-crossing limit adds and cancels around a
// random-walk mid price, in the spirit of github.com/geseq/orderbook's
// benchmark. An oracle book keeps every add passive. The stream ends by
// cancelling everything, so it can be replayed in a loop on one book.
func addCancelStream(n int) []benchOp {
	rng := rand.New(rand.NewPCG(42, 1))
	oracle := New(benchInstrument)
	live := newLiveSet()
	ops := make([]benchOp, 0, n+20_000)
	var ev []Event
	mid := int64(1_000_000)
	nextID := uint64(1)
	for len(ops) < n {
		var op benchOp
		add := len(live.ids) < 2_000 || (len(live.ids) < 10_000 && rng.IntN(2) == 0)
		if add {
			mid += int64(rng.IntN(3)) - 1
			op = benchOp{kind: cmdSubmit, id: nextID, account: uint32(1 + rng.IntN(1000)), qty: int64(1 + rng.IntN(100))}
			nextID++
			if rng.IntN(2) == 0 {
				op.side, op.price = Buy, mid-1-int64(rng.IntN(50))
				if ask, _, ok := oracle.BestAsk(); ok && op.price >= ask {
					op.price = ask - 1 - int64(rng.IntN(5))
				}
			} else {
				op.side, op.price = Sell, mid+1+int64(rng.IntN(50))
				if bid, _, ok := oracle.BestBid(); ok && op.price <= bid {
					op.price = bid + 1 + int64(rng.IntN(5))
				}
			}
		} else {
			op = benchOp{kind: cmdCancel, id: live.pick(rng)}
		}
		ev = op.apply(oracle, ev[:0])
		live.sync(oracle, ev)
		ops = append(ops, op)
	}
	for len(live.ids) > 0 {
		op := benchOp{kind: cmdCancel, id: live.ids[len(live.ids)-1]}
		ev = op.apply(oracle, ev[:0])
		live.sync(oracle, ev)
		ops = append(ops, op)
	}
	return ops
}

// exchangeCoreStream generates exchange-core's benchmark mix: 9% GTC
// limit, 3% IOC, 6% cancel and 82% move (price amend), over 1000
// accounts, with about 1000 orders resting over about 750 price levels.
// It returns the orders that build the starting book and the stream.
func exchangeCoreStream(n int) (prefill, ops []benchOp) {
	const (
		mid    = int64(1_000_000)
		spread = 1100 // with ~500 orders per side this populates ~750 levels
		target = 1000
	)
	rng := rand.New(rand.NewPCG(7, 7))
	oracle := New(benchInstrument)
	live := newLiveSet()
	var ev []Event
	nextID := uint64(1)
	passive := func() benchOp {
		op := benchOp{kind: cmdSubmit, id: nextID, account: uint32(1 + rng.IntN(1000)), qty: int64(1 + rng.IntN(100))}
		nextID++
		if rng.IntN(2) == 0 {
			op.side, op.price = Buy, mid-1-int64(rng.IntN(spread))
		} else {
			op.side, op.price = Sell, mid+1+int64(rng.IntN(spread))
		}
		return op
	}
	for len(live.ids) < target {
		op := passive()
		ev = op.apply(oracle, ev[:0])
		live.sync(oracle, ev)
		prefill = append(prefill, op)
	}
	ops = make([]benchOp, 0, n)
	for len(ops) < n {
		var op benchOp
		switch r := rng.IntN(100); {
		case r < 9:
			op = passive()
		case r < 12:
			// Aggressive IOC sized to take about one order, a little more
			// or less to hold the book near its target size.
			op = benchOp{kind: cmdSubmit, tif: IOC, id: nextID, account: uint32(1 + rng.IntN(1000)), qty: int64(1 + rng.IntN(100))}
			nextID++
			switch {
			case len(live.ids) > target+100:
				op.qty *= 3
			case len(live.ids) < target-100:
				op.qty = 1
			}
			if rng.IntN(2) == 0 {
				op.side, op.price = Buy, mid+spread
			} else {
				op.side, op.price = Sell, mid-spread
			}
		case r < 18:
			op = benchOp{kind: cmdCancel, id: live.pick(rng)}
		default:
			id := live.pick(rng)
			o, _ := oracle.Order(id)
			lo, hi := mid-spread, mid-1
			if o.Side == Sell {
				lo, hi = mid+1, mid+spread
			}
			px := min(max(o.Price+int64(rng.IntN(21))-10, lo), hi)
			if px == o.Price { // a move always changes the price
				if px > lo {
					px--
				} else {
					px++
				}
			}
			op = benchOp{kind: cmdAmend, id: id, price: px}
		}
		ev = op.apply(oracle, ev[:0])
		live.sync(oracle, ev)
		ops = append(ops, op)
	}
	return prefill, ops
}

// latencyHistogram records durations in log-linear buckets (32 per power
// of two, about 3% resolution) without allocating.
type latencyHistogram struct {
	counts [64 << subBucketBits]uint64
	total  uint64
}

const subBucketBits = 5

func bucketOf(ns uint64) int {
	if ns < 1<<subBucketBits {
		return int(ns)
	}
	e := bits.Len64(ns) - subBucketBits - 1
	return (e+1)<<subBucketBits + int(ns>>e) - 1<<subBucketBits
}

func bucketFloor(i int) uint64 {
	if i < 1<<subBucketBits {
		return uint64(i)
	}
	e := i>>subBucketBits - 1
	return uint64(1<<subBucketBits+i&(1<<subBucketBits-1)) << e
}

func (h *latencyHistogram) record(d time.Duration) {
	h.counts[bucketOf(uint64(max(d, 0)))]++
	h.total++
}

func (h *latencyHistogram) quantile(q float64) float64 {
	if h.total == 0 {
		return 0
	}
	rank := uint64(q * float64(h.total))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen > rank {
			return float64(bucketFloor(i))
		}
	}
	return 0
}

func (h *latencyHistogram) report(b *testing.B) {
	b.ReportMetric(h.quantile(0.50), "p50-ns")
	b.ReportMetric(h.quantile(0.99), "p99-ns")
	b.ReportMetric(h.quantile(0.999), "p99.9-ns")
}

func reportOpsPerSecond(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "ops/s")
	}
}

var (
	addCancelOps              []benchOp
	mixPrefill, mixOps        []benchOp
	addCancelLen, mixStreamOp = 1 << 19, 1 << 20
)

// BenchmarkAddCancel replays passive adds and cancels. The stream ends
// with an empty book, so it loops without any reset.
func BenchmarkAddCancel(b *testing.B) {
	if addCancelOps == nil {
		addCancelOps = addCancelStream(addCancelLen)
	}
	ops := addCancelOps
	for _, kind := range indexKinds {
		b.Run(kind.String(), func(b *testing.B) {
			bk := newBook(benchInstrument, kind)
			ev := make([]Event, 0, 64)
			for i := range ops { // warm the pools and the event buffer
				ev = ops[i].apply(bk, ev[:0])
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i, j := 0, 0; i < b.N; i++ {
				ev = ops[j].apply(bk, ev[:0])
				if j++; j == len(ops) {
					j = 0
				}
			}
			b.StopTimer()
			reportOpsPerSecond(b)
		})
	}
}

// BenchmarkExchangeCoreMix replays exchange-core's order mix. Every 64th
// command is timed on its own for the latency percentiles; the clock
// reads add some tens of nanoseconds to those samples. When the stream
// runs out the book is restored, untimed, to its starting snapshot.
func BenchmarkExchangeCoreMix(b *testing.B) {
	if mixOps == nil {
		mixPrefill, mixOps = exchangeCoreStream(mixStreamOp)
	}
	ops := mixOps
	for _, kind := range indexKinds {
		b.Run(kind.String(), func(b *testing.B) {
			bk := newBook(benchInstrument, kind)
			ev := make([]Event, 0, 256)
			for i := range mixPrefill {
				ev = mixPrefill[i].apply(bk, ev[:0])
			}
			start := bk.AppendSnapshot(nil)
			for i := range ops { // warm the pools
				ev = ops[i].apply(bk, ev[:0])
			}
			if err := bk.Restore(start); err != nil {
				b.Fatal(err)
			}
			hist := new(latencyHistogram)
			b.ReportAllocs()
			b.ResetTimer()
			for i, j := 0, 0; i < b.N; i++ {
				if i&63 == 0 {
					t0 := time.Now()
					ev = ops[j].apply(bk, ev[:0])
					hist.record(time.Since(t0))
				} else {
					ev = ops[j].apply(bk, ev[:0])
				}
				if j++; j == len(ops) {
					j = 0
					b.StopTimer()
					if err := bk.Restore(start); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
			}
			b.StopTimer()
			reportOpsPerSecond(b)
			hist.report(b)
		})
	}
}

// TestBenchmarkStreams checks the generated streams do what the
// benchmark names promise.
func TestBenchmarkStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("generates large streams")
	}
	ops := addCancelStream(1 << 15)
	b := New(benchInstrument)
	var ev []Event
	for i := range ops {
		ev = ops[i].apply(b, ev[:0])
		for _, e := range ev {
			if e.Kind == EventTrade || e.Kind == EventRejected {
				t.Fatalf("add/cancel op %d produced %v", i, e)
			}
		}
	}
	if b.Len() != 0 {
		t.Fatalf("add/cancel stream leaves %d orders", b.Len())
	}

	prefill, mix := exchangeCoreStream(1 << 16)
	b = New(benchInstrument)
	for i := range prefill {
		ev = prefill[i].apply(b, ev[:0])
	}
	var counts [3]int
	var levels, samples, rejects int
	for i := range mix {
		ev = mix[i].apply(b, ev[:0])
		counts[min(int(mix[i].kind), 2)]++
		for _, e := range ev {
			if e.Kind == EventRejected {
				rejects++
			}
		}
		if i%1024 == 0 {
			levels += len(b.AppendDepth(nil, Buy, 1<<20)) + len(b.AppendDepth(nil, Sell, 1<<20))
			samples++
		}
	}
	avgLevels := levels / samples
	t.Logf("mix: submit %d cancel %d amend %d, rejects %d, open %d, avg levels %d",
		counts[0], counts[1], counts[2], rejects, b.Len(), avgLevels)
	if rejects != 0 || b.Len() < 800 || b.Len() > 1200 || avgLevels < 600 || avgLevels > 900 {
		t.Fatalf("mix stream does not hold ~1000 orders over ~750 levels")
	}
}

// TestSteadyStateAllocations pins the zero-allocation claim for the
// default index: once warm, adds, cancels, amends and trades allocate
// nothing.
func TestSteadyStateAllocations(t *testing.T) {
	prefill, mix := exchangeCoreStream(1 << 14)
	b := New(benchInstrument)
	ev := make([]Event, 0, 256)
	for i := range prefill {
		ev = prefill[i].apply(b, ev[:0])
	}
	start := b.AppendSnapshot(nil)
	for i := range mix {
		ev = mix[i].apply(b, ev[:0])
	}
	if err := b.Restore(start); err != nil {
		t.Fatal(err)
	}
	i := 0
	allocs := testing.AllocsPerRun(len(mix)-1, func() {
		ev = mix[i].apply(b, ev[:0])
		i++
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per command in steady state", allocs)
	}
}
