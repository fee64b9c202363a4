package book

import (
	"math/bits"
	"slices"
)

// ladder is a level index specialised for integer prices: a sorted array
// of 64-tick pages, each page a bitmap of occupied ticks plus the level
// references. Finding a level is a page lookup and an array read; finding
// the next level is a count-leading-zeros on the page bitmap. The sorted
// page array keeps memory proportional to the number of populated pages,
// so a book with a few far-away prices does not allocate a dense array
// over the whole price range, while the busy area near the top of the
// book packs into a handful of pages. Pages are sorted ascending, so the
// best page is the last one and the common case, activity near the top,
// touches the end of the array.
type ladder struct {
	pages []pageEntry // ascending by key
	pool  []ladderPage
	free  []uint32
}

const (
	pageShift = 6
	pageSpan  = 1 << pageShift
	pageMask  = pageSpan - 1
)

type pageEntry struct {
	key int64 // price key >> pageShift
	ref uint32
}

type ladderPage struct {
	occupied uint64 // bit i set when slots[i] holds a level
	slots    [pageSpan]levelRef
}

// split separates an index key into its page key and bit position. The
// arithmetic shift and mask also work for negative keys (asks).
func split(key int64) (int64, uint) { return key >> pageShift, uint(key) & pageMask }

// search finds the position of page key pk, or where it would be inserted.
func (l *ladder) search(pk int64) (int, bool) {
	n := len(l.pages)
	if n == 0 {
		return 0, false
	}
	// Most traffic is at the top of the book, the end of the array.
	if last := l.pages[n-1].key; pk >= last {
		if pk == last {
			return n - 1, true
		}
		return n, false
	}
	lo, hi := 0, n-1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if l.pages[mid].key < pk {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, l.pages[lo].key == pk
}

func (l *ladder) get(key int64) levelRef {
	pk, bit := split(key)
	i, ok := l.search(pk)
	if !ok {
		return 0
	}
	return l.pool[l.pages[i].ref].slots[bit]
}

func (l *ladder) insert(key int64, ref levelRef) {
	pk, bit := split(key)
	i, ok := l.search(pk)
	if !ok {
		l.pages = slices.Insert(l.pages, i, pageEntry{key: pk, ref: l.allocPage()})
	}
	p := &l.pool[l.pages[i].ref]
	p.slots[bit] = ref
	p.occupied |= 1 << bit
}

func (l *ladder) remove(key int64) {
	pk, bit := split(key)
	i, ok := l.search(pk)
	if !ok {
		return
	}
	pr := l.pages[i].ref
	p := &l.pool[pr]
	p.slots[bit] = 0
	p.occupied &^= 1 << bit
	if p.occupied == 0 {
		l.free = append(l.free, pr)
		l.pages = slices.Delete(l.pages, i, i+1)
	}
}

func (l *ladder) highest(i int) levelRef {
	p := &l.pool[l.pages[i].ref]
	return p.slots[63-bits.LeadingZeros64(p.occupied)]
}

func (l *ladder) best() levelRef {
	if len(l.pages) == 0 {
		return 0
	}
	return l.highest(len(l.pages) - 1)
}

func (l *ladder) next(key int64) levelRef {
	pk, bit := split(key)
	i, ok := l.search(pk)
	if ok {
		p := &l.pool[l.pages[i].ref]
		if below := p.occupied & (1<<bit - 1); below != 0 {
			return p.slots[63-bits.LeadingZeros64(below)]
		}
	}
	// Pages are never empty, so the previous page holds the answer.
	if i == 0 {
		return 0
	}
	return l.highest(i - 1)
}

func (l *ladder) allocPage() uint32 {
	if n := len(l.free); n > 0 {
		r := l.free[n-1]
		l.free = l.free[:n-1]
		return r
	}
	if len(l.pool) == 0 {
		l.pool = append(l.pool, ladderPage{}) // keep ref 0 unused
	}
	l.pool = append(l.pool, ladderPage{})
	return uint32(len(l.pool) - 1)
}

func (l *ladder) reset() {
	clear(l.pool)
	l.free = l.free[:0]
	for i := len(l.pool) - 1; i >= 1; i-- {
		l.free = append(l.free, uint32(i))
	}
	l.pages = l.pages[:0]
}
