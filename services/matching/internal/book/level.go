package book

// levelRef indexes Book.levels; zero is the nil reference.
type levelRef uint32

// level is a FIFO of orders at one price. The visible book and the stop
// books share the type: in a stop book the price is the trigger price.
type level struct {
	price   int64
	visible int64 // sum of the orders' visible quantity
	head    orderRef
	tail    orderRef
	count   int32
	next    levelRef // free list
}

// levelIndex orders the levels of one side by a key where a larger key is
// better (nearer the top of the book, or nearer to triggering). It maps
// keys to level references and knows nothing else, so the level storage,
// the FIFOs and the order pool are shared by every implementation and
// only the price lookup is compared in benchmarks.
type levelIndex interface {
	// get returns the level at key, or 0.
	get(key int64) levelRef
	// insert adds a key that is not present.
	insert(key int64, ref levelRef)
	// remove deletes a key that is present.
	remove(key int64)
	// best returns the level with the largest key, or 0 when empty.
	best() levelRef
	// next returns the level with the largest key smaller than key, or 0.
	next(key int64) levelRef
	// reset empties the index, keeping its memory for reuse.
	reset()
}

// indexKind selects the level index implementation.
type indexKind uint8

const (
	indexLadder indexKind = iota // the default; see ladder.go
	indexRBTree
)

func (k indexKind) String() string {
	if k == indexRBTree {
		return "rbtree"
	}
	return "ladder"
}

func newIndex(k indexKind) levelIndex {
	if k == indexRBTree {
		return newRBIndex()
	}
	return &ladder{}
}

// priceKey maps a price to the index key where larger is better. For
// bids and sell stops a higher price is better (a sell stop with a higher
// trigger fires first); for asks and buy stops a lower one is.
func priceKey(higherIsBetter bool, price int64) int64 {
	if higherIsBetter {
		return price
	}
	return -price
}

// ladderSide is one ordered collection of levels: a side of the visible
// book or a stop book.
type ladderSide struct {
	index          levelIndex
	higherIsBetter bool
	orders         int // orders linked into the side's levels
}

func (s *ladderSide) key(price int64) int64 { return priceKey(s.higherIsBetter, price) }

func (b *Book) allocLevel(price int64) levelRef {
	var r levelRef
	if r = b.freeLevels; r != 0 {
		b.freeLevels = b.levels[r].next
	} else {
		b.levels = append(b.levels, level{})
		r = levelRef(len(b.levels) - 1)
	}
	b.levels[r] = level{price: price}
	return r
}

// levelFor returns the level at price, creating it when absent.
func (b *Book) levelFor(s *ladderSide, price int64) levelRef {
	k := s.key(price)
	if r := s.index.get(k); r != 0 {
		return r
	}
	r := b.allocLevel(price)
	s.index.insert(k, r)
	return r
}

// dropLevelIfEmpty removes an empty level from its side and recycles it.
func (b *Book) dropLevelIfEmpty(s *ladderSide, r levelRef) {
	l := &b.levels[r]
	if l.head != 0 {
		return
	}
	s.index.remove(s.key(l.price))
	l.next = b.freeLevels
	b.freeLevels = r
}

// pushBack appends an order to the back of a level's queue.
func (b *Book) pushBack(s *ladderSide, lr levelRef, r orderRef) {
	l := &b.levels[lr]
	o := &b.orders[r]
	o.level = lr
	o.next = 0
	o.prev = l.tail
	if l.tail != 0 {
		b.orders[l.tail].next = r
	} else {
		l.head = r
	}
	l.tail = r
	l.count++
	l.visible += o.visible
	s.orders++
}

// unlink removes an order from its level's queue; the level may be left
// empty for the caller to drop.
func (b *Book) unlink(s *ladderSide, r orderRef) {
	o := &b.orders[r]
	l := &b.levels[o.level]
	if o.prev != 0 {
		b.orders[o.prev].next = o.next
	} else {
		l.head = o.next
	}
	if o.next != 0 {
		b.orders[o.next].prev = o.prev
	} else {
		l.tail = o.prev
	}
	l.count--
	l.visible -= o.visible
	s.orders--
	o.prev, o.next, o.level = 0, 0, 0
}
