package book

// hashTable is an open-addressing hash map from non-zero uint64 keys to
// V, with linear probing and backward-shift deletion. Compared with a Go
// map it never allocates once grown (no tombstones, so no rehash after
// churn), and its probe sequence depends only on the keys, so nothing
// about it can leak iteration order into the book's behaviour.
type hashTable[V any] struct {
	slots []hashSlot[V]
	shift uint8 // 64 - log2(len(slots))
	n     int
}

type hashSlot[V any] struct {
	key uint64 // 0 marks an empty slot
	val V
}

const minTableSize = 64

// home is the slot a key hashes to: Fibonacci hashing, which spreads the
// sequential ids an exchange assigns across the table.
func (t *hashTable[V]) home(key uint64) uint64 {
	return (key * 0x9E3779B97F4A7C15) >> t.shift
}

func (t *hashTable[V]) mask() uint64 { return uint64(len(t.slots) - 1) }

// find returns a pointer to the value for key, or nil.
func (t *hashTable[V]) find(key uint64) *V {
	if t.n == 0 {
		return nil
	}
	m := t.mask()
	for i := t.home(key); ; i = (i + 1) & m {
		s := &t.slots[i]
		if s.key == key {
			return &s.val
		}
		if s.key == 0 {
			return nil
		}
	}
}

// put inserts a key that is not present and returns its value slot.
func (t *hashTable[V]) put(key uint64, val V) *V {
	if (t.n+1)*2 > len(t.slots) {
		t.grow()
	}
	m := t.mask()
	i := t.home(key)
	for t.slots[i].key != 0 {
		i = (i + 1) & m
	}
	t.slots[i] = hashSlot[V]{key: key, val: val}
	t.n++
	return &t.slots[i].val
}

// remove deletes key if present. Later entries of the probe run are
// shifted back so lookups never need tombstones.
func (t *hashTable[V]) remove(key uint64) {
	if t.n == 0 {
		return
	}
	m := t.mask()
	i := t.home(key)
	for {
		k := t.slots[i].key
		if k == key {
			break
		}
		if k == 0 {
			return
		}
		i = (i + 1) & m
	}
	for j := (i + 1) & m; ; j = (j + 1) & m {
		k := t.slots[j].key
		if k == 0 {
			break
		}
		h := t.home(k)
		// Move slot j into the hole at i unless its home lies cyclically
		// in (i, j], where it is still reachable.
		if (j > i && (h <= i || h > j)) || (j < i && h <= i && h > j) {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = hashSlot[V]{}
	t.n--
}

func (t *hashTable[V]) grow() {
	size := max(len(t.slots)*2, minTableSize)
	old := t.slots
	t.slots = make([]hashSlot[V], size)
	t.shift = uint8(64 - log2(size))
	t.n = 0
	for _, s := range old {
		if s.key != 0 {
			t.put(s.key, s.val)
		}
	}
}

func (t *hashTable[V]) reset() {
	clear(t.slots)
	t.n = 0
}

func (t *hashTable[V]) len() int { return t.n }

func log2(n int) int {
	l := 0
	for n > 1 {
		n >>= 1
		l++
	}
	return l
}

// idTable maps open order ids to their records.
type idTable struct{ t hashTable[orderRef] }

func (t *idTable) get(id uint64) orderRef {
	if p := t.t.find(id); p != nil {
		return *p
	}
	return 0
}

func (t *idTable) put(id uint64, r orderRef) { t.t.put(id, r) }
func (t *idTable) remove(id uint64)          { t.t.remove(id) }
