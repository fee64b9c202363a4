package book

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// command is one book command as tests and the fuzzer drive it.
type command struct {
	kind    cmdKind
	order   NewOrder
	amend   Amend
	id      uint64
	account uint32
	now     int64
}

type cmdKind uint8

const (
	cmdSubmit cmdKind = iota
	cmdCancel
	cmdAmend
	cmdCancelAll
	cmdExpire
	cmdSnapshot // restore the book from its own snapshot, then go on
)

func (c *command) apply(b *Book, dst []Event) []Event {
	switch c.kind {
	case cmdSubmit:
		return b.Submit(dst, c.order)
	case cmdCancel:
		return b.Cancel(dst, c.id)
	case cmdAmend:
		return b.Amend(dst, c.amend)
	case cmdCancelAll:
		return b.CancelAll(dst, c.account)
	case cmdExpire:
		return b.Expire(dst, c.now)
	}
	return dst
}

// fuzzInstrument is small on purpose so random bytes hit the limits.
var fuzzInstrument = Instrument{TickSize: 1, LotSize: 1, MinQty: 1, MaxQty: 12, MaxPrice: 106}

// byteReader hands out bytes and zeros once the input is exhausted.
type byteReader struct {
	data []byte
}

func (r *byteReader) next() byte {
	if len(r.data) == 0 {
		return 0
	}
	v := r.data[0]
	r.data = r.data[1:]
	return v
}

// decodeCommands turns arbitrary bytes into a command sequence over a
// small id, account and price space, including invalid values, so that
// random input exercises crossing, duplicates, STP and every reject path.
func decodeCommands(data []byte) []command {
	r := &byteReader{data: data}
	var cmds []command
	now := int64(1000)
	price := func() int64 {
		v := r.next()
		if v >= 250 {
			return int64(v) - 252 // -2 ... 3: mostly invalid
		}
		return 90 + int64(v%20)
	}
	qty := func() int64 {
		v := r.next()
		if v >= 250 {
			return int64(v) - 251
		}
		return 1 + int64(v%14)
	}
	for len(r.data) > 0 {
		op := r.next() % 16
		var c command
		switch {
		case op < 8:
			c.kind = cmdSubmit
			o := &c.order
			o.ID = 1 + uint64(r.next()%24)
			o.Account = uint32(r.next() % 3)
			o.Side = Buy
			if r.next()&1 == 1 {
				o.Side = Sell
			}
			switch t := r.next(); t % 8 {
			case 0, 1, 2, 3:
				o.Type = Limit
			case 4:
				o.Type = Market
			case 5:
				o.Type = Stop
			case 6:
				o.Type = StopLimit
			default:
				o.Type = OrderType(t >> 3) // sometimes invalid
			}
			o.TIF = TimeInForce(r.next() % 6) // 5 is invalid
			o.Price = price()
			if o.Type.isStop() {
				o.TriggerPrice = price()
				if o.TriggerPrice < 0 {
					o.TriggerPrice = 0
				}
			}
			o.Qty = qty()
			if d := r.next(); d%3 == 0 {
				o.DisplayQty = int64(d % 5)
			}
			flags := r.next()
			o.PostOnly = flags&1 == 1
			o.STP = STPMode((flags >> 1) % 6) // 5 is invalid
			o.Now = now
			o.ExpireAt = now + int64(r.next()%8) - 1
			if o.Side == Sell && flags&0x80 != 0 {
				o.Side = Side(flags >> 5) // sometimes invalid
			}
		case op < 10:
			c.kind = cmdCancel
			c.id = 1 + uint64(r.next()%25)
		case op < 13:
			c.kind = cmdAmend
			c.amend.ID = 1 + uint64(r.next()%25)
			if v := r.next(); v%2 == 0 {
				c.amend.Price = price()
			}
			if v := r.next(); v%2 == 0 {
				c.amend.Qty = qty()
			}
			if v := r.next(); v%4 == 0 {
				c.amend.TriggerPrice = price()
			}
		case op == 13:
			c.kind = cmdCancelAll
			c.account = uint32(r.next() % 3)
		case op == 14:
			c.kind = cmdExpire
			now += int64(r.next() % 6)
			c.now = now
		default:
			c.kind = cmdSnapshot
		}
		cmds = append(cmds, c)
	}
	return cmds
}

// shadowOrder is what the event stream alone says about an open order.
type shadowOrder struct {
	side                     Side
	limit                    int64 // 0 when the order has no limit price
	qty, filled, cancelled   int64
	acceptedOrAmendedInBatch bool
}

func (s *shadowOrder) remaining() int64 { return s.qty - s.filled - s.cancelled }

// checker rebuilds the book from events only - open orders and L2 - and
// compares it with the book, which checks that the events are complete
// and consistent: conservation of quantity, limit prices respected by
// every trade, sequence numbers, and L2 deltas that add up to the book.
type checker struct {
	open map[uint64]*shadowOrder
	l2   [2]map[int64]int64
	seq  uint64
}

func newChecker() *checker {
	return &checker{open: map[uint64]*shadowOrder{}, l2: [2]map[int64]int64{{}, {}}}
}

func (c *checker) observe(events []Event) error {
	for _, e := range events {
		if e.Seq != c.seq+1 {
			return fmt.Errorf("event %v: seq %d after %d", e, e.Seq, c.seq)
		}
		c.seq = e.Seq
		if err := c.observeOne(e); err != nil {
			return fmt.Errorf("event #%d %v: %w", e.Seq, e, err)
		}
	}
	return nil
}

func (c *checker) observeOne(e Event) error {
	o := c.open[e.OrderID]
	switch e.Kind {
	case EventAccepted:
		if o != nil {
			return fmt.Errorf("id already open")
		}
		c.open[e.OrderID] = &shadowOrder{side: e.Side, limit: e.Price, qty: e.Qty}
		return nil
	case EventRejected, EventLevel:
	default:
		if o == nil {
			return fmt.Errorf("order is not open")
		}
	}
	switch e.Kind {
	case EventTrade:
		m := c.open[e.MakerID]
		switch {
		case m == nil:
			return fmt.Errorf("maker is not open")
		case m.side == o.side || e.Side != o.side:
			return fmt.Errorf("sides do not oppose")
		case e.Qty <= 0:
			return fmt.Errorf("empty trade")
		case m.limit != e.Price:
			return fmt.Errorf("trade at %d, maker limit %d", e.Price, m.limit)
		case o.limit != 0 && !crosses(o.side, o.limit, e.Price):
			return fmt.Errorf("trade at %d beyond taker limit %d", e.Price, o.limit)
		}
		o.filled += e.Qty
		m.filled += e.Qty
		if o.remaining() != e.Remaining || m.remaining() != e.MakerRemaining {
			return fmt.Errorf("remaining %d/%d, shadow %d/%d", e.Remaining, e.MakerRemaining, o.remaining(), m.remaining())
		}
		if m.remaining() == 0 {
			delete(c.open, e.MakerID)
		}
		if o.remaining() == 0 {
			delete(c.open, e.OrderID)
		}
	case EventCancelled:
		if e.Qty <= 0 {
			return fmt.Errorf("cancelled nothing")
		}
		o.cancelled += e.Qty
		if o.remaining() != e.Remaining || e.Remaining < 0 {
			return fmt.Errorf("remaining %d, shadow %d", e.Remaining, o.remaining())
		}
		if e.Remaining == 0 {
			delete(c.open, e.OrderID)
		}
	case EventAmended:
		o.qty, o.limit = e.Qty, e.Price
		if o.remaining() != e.Remaining || e.Remaining <= 0 {
			return fmt.Errorf("remaining %d, shadow %d", e.Remaining, o.remaining())
		}
	case EventLevel:
		if !e.Side.valid() || e.Qty < 0 {
			return fmt.Errorf("bad level event")
		}
		if e.Qty == 0 {
			delete(c.l2[e.Side.index()], e.Price)
		} else {
			c.l2[e.Side.index()][e.Price] = e.Qty
		}
	}
	return nil
}

// compare checks the shadow against the book after a command.
func (c *checker) compare(b *Book) error {
	if b.Len() != len(c.open) {
		return fmt.Errorf("book has %d open orders, events say %d", b.Len(), len(c.open))
	}
	for id, s := range c.open {
		o, ok := b.Order(id)
		if !ok {
			return fmt.Errorf("order %d open by events, unknown to the book", id)
		}
		if o.Qty != s.qty || o.Filled != s.filled || o.Cancelled != s.cancelled || o.Remaining != s.remaining() {
			return fmt.Errorf("order %d: book %+v, events %+v", id, o, *s)
		}
	}
	for _, side := range [2]Side{Buy, Sell} {
		depth := b.AppendDepth(nil, side, 1<<30)
		want := c.l2[side.index()]
		if len(depth) != len(want) {
			return fmt.Errorf("%s L2 from events has %d levels, book %d", side, len(want), len(depth))
		}
		for _, d := range depth {
			if want[d.Price] != d.Qty {
				return fmt.Errorf("%s L2 level %d: events %d, book %d", side, d.Price, want[d.Price], d.Qty)
			}
		}
	}
	return nil
}

// runChecked applies commands to a book, checking invariants and the
// event shadow after each. A cmdSnapshot command restores the book from
// its own snapshot in place, so the remaining commands run on the
// restored state. It returns every event formatted with its sequence
// number, and the final snapshot.
func runChecked(t testing.TB, b *Book, cmds []command) ([]string, []byte) {
	t.Helper()
	c := newChecker()
	var events []Event
	var log []string
	for i := range cmds {
		cmd := &cmds[i]
		if cmd.kind == cmdSnapshot {
			snap := b.AppendSnapshot(nil)
			if err := b.Restore(snap); err != nil {
				t.Fatalf("command %d: restore own snapshot: %v", i, err)
			}
			if again := b.AppendSnapshot(nil); !bytes.Equal(snap, again) {
				t.Fatalf("command %d: snapshot changed by a restore round trip", i)
			}
		}
		events = cmd.apply(b, events[:0])
		for _, e := range events {
			log = append(log, fmt.Sprintf("#%d %v", e.Seq, e))
		}
		if err := b.checkInvariants(); err != nil {
			t.Fatalf("command %d %+v: invariant: %v\nevents:\n%s", i, *cmd, err, strings.Join(tail(log, 30), "\n"))
		}
		if err := c.observe(events); err != nil {
			t.Fatalf("command %d %+v: events: %v\nevents:\n%s", i, *cmd, err, strings.Join(tail(log, 30), "\n"))
		}
		if err := c.compare(b); err != nil {
			t.Fatalf("command %d %+v: shadow: %v\nevents:\n%s", i, *cmd, err, strings.Join(tail(log, 30), "\n"))
		}
	}
	return log, b.AppendSnapshot(nil)
}

func tail(s []string, n int) []string { return s[max(len(s)-n, 0):] }

// eventStrings formats events without sequence numbers for tables.
func eventStrings(events []Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.String()
	}
	return out
}

var indexKinds = []indexKind{indexLadder, indexRBTree}

func diffLines(got, want []string) string {
	if slices.Equal(got, want) {
		return ""
	}
	var sb strings.Builder
	for i := range max(len(got), len(want)) {
		g, w := "", ""
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		mark := "  "
		if g != w {
			mark = "! "
		}
		fmt.Fprintf(&sb, "%sgot  %-60s want %s\n", mark, g, w)
	}
	return sb.String()
}
