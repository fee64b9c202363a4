package book

// The expiry queue is a binary min-heap of GTD and DAY orders keyed by
// (expireAt, acceptSeq). Each order remembers its heap position, so a
// cancel or fill removes its entry in O(log n) and Expire only looks at
// the root when nothing is due. The acceptSeq tie-break gives a total
// order, so orders expiring at the same instant are cancelled in the same
// order on every replay, whatever the heap's internal layout.

type expiryEntry struct {
	at  int64
	seq uint64
	ref orderRef
}

func (e expiryEntry) before(f expiryEntry) bool {
	return e.at < f.at || (e.at == f.at && e.seq < f.seq)
}

func (b *Book) expiryPush(r orderRef) {
	o := &b.orders[r]
	b.expiry = append(b.expiry, expiryEntry{at: o.expireAt, seq: o.acceptSeq, ref: r})
	i := len(b.expiry) - 1
	o.heapPos = int32(i + 1)
	b.expiryUp(i)
}

func (b *Book) expiryRemove(r orderRef) {
	i := int(b.orders[r].heapPos) - 1
	b.orders[r].heapPos = 0
	last := len(b.expiry) - 1
	if i != last {
		b.expiry[i] = b.expiry[last]
		b.orders[b.expiry[i].ref].heapPos = int32(i + 1)
	}
	b.expiry = b.expiry[:last]
	if i < last {
		b.expiryDown(i)
		b.expiryUp(i)
	}
}

func (b *Book) expirySet(i int, e expiryEntry) {
	b.expiry[i] = e
	b.orders[e.ref].heapPos = int32(i + 1)
}

func (b *Book) expiryUp(i int) {
	e := b.expiry[i]
	for i > 0 {
		p := (i - 1) / 2
		if !e.before(b.expiry[p]) {
			break
		}
		b.expirySet(i, b.expiry[p])
		i = p
	}
	b.expirySet(i, e)
}

func (b *Book) expiryDown(i int) {
	n := len(b.expiry)
	e := b.expiry[i]
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if c+1 < n && b.expiry[c+1].before(b.expiry[c]) {
			c++
		}
		if !b.expiry[c].before(e) {
			break
		}
		b.expirySet(i, b.expiry[c])
		i = c
	}
	b.expirySet(i, e)
}
