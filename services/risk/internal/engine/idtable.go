package engine

// idTable maps non-zero uint64 keys to uint64 values with open addressing and linear probing.
// Deleting shifts later entries back instead of leaving tombstones, so a table whose size stays
// constant never rehashes and never allocates: that is what lets reservations churn at millions per
// second without garbage. It is not safe for concurrent use.
type idTable struct {
	keys  []uint64 // 0 marks an empty slot
	vals  []uint64
	count int
	shift uint // 64 − log2(len(keys))
}

const idTableMinSize = 16

// home is the preferred slot of key: Fibonacci hashing spreads sequential ids across the table.
func (t *idTable) home(key uint64) int {
	return int((key * 0x9E3779B97F4A7C15) >> t.shift)
}

func (t *idTable) mask() int { return len(t.keys) - 1 }

// find returns the slot holding key, or -1.
func (t *idTable) find(key uint64) int {
	if t.count == 0 {
		return -1
	}
	for i := t.home(key); ; i = (i + 1) & t.mask() {
		switch t.keys[i] {
		case key:
			return i
		case 0:
			return -1
		}
	}
}

func (t *idTable) get(key uint64) (uint64, bool) {
	if i := t.find(key); i >= 0 {
		return t.vals[i], true
	}
	return 0, false
}

// insert adds key → val and reports false, changing nothing, if key is already present or zero.
func (t *idTable) insert(key, val uint64) bool {
	if key == 0 || t.find(key) >= 0 {
		return false
	}
	if (t.count+1)*2 > len(t.keys) { // keep the load at most 1/2 so probes stay short
		t.resize(max(idTableMinSize, 2*len(t.keys)))
	}
	t.place(key, val)
	t.count++
	return true
}

func (t *idTable) place(key, val uint64) {
	i := t.home(key)
	for t.keys[i] != 0 {
		i = (i + 1) & t.mask()
	}
	t.keys[i], t.vals[i] = key, val
}

func (t *idTable) resize(size int) {
	oldKeys, oldVals := t.keys, t.vals
	t.keys, t.vals = make([]uint64, size), make([]uint64, size)
	t.shift = 64
	for n := size; n > 1; n >>= 1 {
		t.shift--
	}
	for i, k := range oldKeys {
		if k != 0 {
			t.place(k, oldVals[i])
		}
	}
}

// remove deletes key and returns its value.
func (t *idTable) remove(key uint64) (uint64, bool) {
	i := t.find(key)
	if i < 0 {
		return 0, false
	}
	val := t.vals[i]
	// Backward-shift deletion: walk the probe run after i and move back every entry whose home
	// slot is not cyclically within (i, j], so lookups never stop early at the hole.
	for j := i; ; {
		j = (j + 1) & t.mask()
		k := t.keys[j]
		if k == 0 {
			break
		}
		h := t.home(k)
		if (i <= j && i < h && h <= j) || (i > j && (i < h || h <= j)) {
			continue
		}
		t.keys[i], t.vals[i] = k, t.vals[j]
		i = j
	}
	t.keys[i], t.vals[i] = 0, 0
	t.count--
	return val, true
}
