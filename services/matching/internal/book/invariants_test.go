package book

import (
	"errors"
	"fmt"
)

// checkInvariants verifies the book's internal consistency. It is the
// oracle of the fuzz test and runs after every command in most tests.
func (b *Book) checkInvariants() error {
	open := 0
	for _, side := range [2]Side{Buy, Sell} {
		n, err := b.checkQueue(side, false)
		if err != nil {
			return err
		}
		open += n
		if n, err = b.checkQueue(side, true); err != nil {
			return err
		}
		open += n
	}
	if bid, _, ok := b.BestBid(); ok {
		if ask, _, ok := b.BestAsk(); ok && bid >= ask {
			return fmt.Errorf("crossed book: bid %d >= ask %d", bid, ask)
		}
	}
	if b.ids.t.len() != open {
		return fmt.Errorf("id table holds %d orders, queues hold %d", b.ids.t.len(), open)
	}
	if b.trigHead != 0 || b.trigTail != 0 {
		return errors.New("trigger queue not drained")
	}
	if b.out != nil {
		return errors.New("book kept a reference to the event buffer")
	}
	if err := b.checkAccounts(open); err != nil {
		return err
	}
	if err := b.checkExpiry(); err != nil {
		return err
	}
	return b.checkPools(open)
}

func (b *Book) checkQueue(side Side, stops bool) (int, error) {
	s := b.side(side)
	name := side.String()
	if stops {
		s = b.stopSide(side)
		name += " stops"
	}
	if l, ok := s.index.(*ladder); ok {
		if err := l.check(); err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
	}
	total := 0
	var prevKey int64
	for lr := s.index.best(); lr != 0; {
		l := &b.levels[lr]
		k := s.key(l.price)
		if total > 0 && k >= prevKey {
			return 0, fmt.Errorf("%s: level %d out of order", name, l.price)
		}
		prevKey = k
		if s.index.get(k) != lr {
			return 0, fmt.Errorf("%s: index lookup of %d disagrees", name, l.price)
		}
		if l.head == 0 || l.count == 0 {
			return 0, fmt.Errorf("%s: empty level %d", name, l.price)
		}
		var sum int64
		var count int32
		var prev orderRef
		for r := l.head; r != 0; r = b.orders[r].next {
			o := &b.orders[r]
			if o.prev != prev {
				return 0, fmt.Errorf("%s: broken prev link at order %d", name, o.id)
			}
			prev = r
			if err := b.checkOrder(r, lr, side, stops); err != nil {
				return 0, fmt.Errorf("%s level %d: %w", name, l.price, err)
			}
			sum += o.visible
			count++
			if count > l.count {
				return 0, fmt.Errorf("%s: level %d longer than its count", name, l.price)
			}
		}
		if l.tail != prev {
			return 0, fmt.Errorf("%s: level %d tail mismatch", name, l.price)
		}
		if sum != l.visible || count != l.count {
			return 0, fmt.Errorf("%s: level %d total %d/%d, orders sum %d/%d", name, l.price, l.visible, l.count, sum, count)
		}
		if !stops && l.visible <= 0 {
			return 0, fmt.Errorf("%s: level %d shows nothing", name, l.price)
		}
		total += int(count)
		lr = s.index.next(k)
	}
	if total != s.orders {
		return 0, fmt.Errorf("%s: side counts %d orders, levels hold %d", name, s.orders, total)
	}
	return total, nil
}

func (b *Book) checkOrder(r orderRef, lr levelRef, side Side, stops bool) error {
	o := &b.orders[r]
	l := &b.levels[lr]
	switch {
	case o.level != lr:
		return fmt.Errorf("order %d points at another level", o.id)
	case o.side != side:
		return fmt.Errorf("order %d on the wrong side", o.id)
	case !o.registered || b.ids.get(o.id) != r:
		return fmt.Errorf("order %d not findable by id", o.id)
	case o.filled+o.cancelled+o.remaining != o.qty:
		return fmt.Errorf("order %d: filled %d + cancelled %d + remaining %d != qty %d", o.id, o.filled, o.cancelled, o.remaining, o.qty)
	case o.remaining <= 0:
		return fmt.Errorf("order %d open with nothing remaining", o.id)
	case o.tif.expires() != (o.heapPos != 0):
		return fmt.Errorf("order %d expiry queue membership wrong", o.id)
	}
	if stops {
		switch {
		case o.loc != locStop || !o.typ.isStop():
			return fmt.Errorf("order %d is not a pending stop", o.id)
		case o.trigger != l.price:
			return fmt.Errorf("stop %d trigger %d in level %d", o.id, o.trigger, l.price)
		case o.visible != o.remaining:
			return fmt.Errorf("stop %d visible %d != remaining %d", o.id, o.visible, o.remaining)
		case b.stopReached(o.side, o.trigger):
			return fmt.Errorf("stop %d reached its trigger but did not fire", o.id)
		}
		return nil
	}
	switch {
	case o.loc != locBook || !o.typ.hasLimitPrice():
		return fmt.Errorf("order %d is not a resting limit order", o.id)
	case o.tif.immediate():
		return fmt.Errorf("order %d with time in force %d rests", o.id, o.tif)
	case o.price != l.price:
		return fmt.Errorf("order %d price %d in level %d", o.id, o.price, l.price)
	case o.visible <= 0 || o.visible > o.slice():
		return fmt.Errorf("order %d visible %d outside (0, %d]", o.id, o.visible, o.slice())
	case o.display == 0 && o.visible != o.remaining:
		return fmt.Errorf("order %d hides quantity without being an iceberg", o.id)
	}
	return nil
}

func (b *Book) checkAccounts(open int) error {
	listed := 0
	for _, slot := range b.accounts.slots {
		if slot.key == 0 {
			continue
		}
		acc := uint32(slot.key - 1)
		l := slot.val
		var prev orderRef
		var n int32
		for r := l.head; r != 0; r = b.orders[r].accNext {
			o := &b.orders[r]
			switch {
			case o.account != acc:
				return fmt.Errorf("order %d of account %d listed under %d", o.id, o.account, acc)
			case o.accPrev != prev:
				return fmt.Errorf("account %d: broken prev link", acc)
			case prev != 0 && b.orders[prev].acceptSeq >= o.acceptSeq:
				return fmt.Errorf("account %d: list not in acceptance order", acc)
			case !o.registered:
				return fmt.Errorf("account %d lists a closed order", acc)
			}
			prev = r
			n++
			if n > int32(open) {
				return fmt.Errorf("account %d: list loops", acc)
			}
		}
		if n != l.count || n == 0 || l.tail != prev {
			return fmt.Errorf("account %d: count %d, walked %d", acc, l.count, n)
		}
		listed += int(n)
	}
	if listed != open {
		return fmt.Errorf("account lists hold %d orders, book %d", listed, open)
	}
	return nil
}

func (b *Book) checkExpiry() error {
	for i, e := range b.expiry {
		o := &b.orders[e.ref]
		if int(o.heapPos) != i+1 || e.at != o.expireAt || e.seq != o.acceptSeq || !o.registered {
			return fmt.Errorf("expiry entry %d does not match order %d", i, o.id)
		}
		if i > 0 && e.before(b.expiry[(i-1)/2]) {
			return fmt.Errorf("expiry heap order broken at %d", i)
		}
	}
	return nil
}

// checkPools verifies that every pool slot is either live or on the free
// list, so nothing leaks.
func (b *Book) checkPools(open int) error {
	free := 0
	for r := b.freeOrders; r != 0; r = b.orders[r].next {
		if b.orders[r].registered || b.orders[r].loc != locNone {
			return fmt.Errorf("free order slot %d still in use", r)
		}
		free++
		if free > len(b.orders) {
			return errors.New("order free list loops")
		}
	}
	if free+open != len(b.orders)-1 {
		return fmt.Errorf("order pool leak: %d free + %d open != %d", free, open, len(b.orders)-1)
	}
	freeLevels := 0
	for r := b.freeLevels; r != 0; r = b.levels[r].next {
		freeLevels++
		if freeLevels > len(b.levels) {
			return errors.New("level free list loops")
		}
	}
	used := 0
	for i := range b.sides {
		used += countLevels(b, &b.sides[i]) + countLevels(b, &b.stops[i])
	}
	if freeLevels+used != len(b.levels)-1 {
		return fmt.Errorf("level pool leak: %d free + %d used != %d", freeLevels, used, len(b.levels)-1)
	}
	return nil
}

func countLevels(b *Book, s *ladderSide) int {
	n := 0
	for lr := s.index.best(); lr != 0; lr = s.index.next(s.key(b.levels[lr].price)) {
		n++
	}
	return n
}

// check verifies the ladder's own structure.
func (l *ladder) check() error {
	live := 0
	for i, p := range l.pages {
		if i > 0 && l.pages[i-1].key >= p.key {
			return errors.New("ladder pages out of order")
		}
		pg := &l.pool[p.ref]
		if pg.occupied == 0 {
			return errors.New("ladder keeps an empty page")
		}
		for bit, ref := range pg.slots {
			if (ref != 0) != (pg.occupied&(1<<bit) != 0) {
				return errors.New("ladder bitmap disagrees with slots")
			}
		}
		live++
	}
	if live+len(l.free) != max(len(l.pool)-1, 0) {
		return errors.New("ladder page pool leak")
	}
	return nil
}
