package engine

// smallIndex finds values by key with a linear scan while it holds few entries and switches to a map
// once it grows. Execution batches usually touch a handful of balances and positions, where a scan
// beats hashing and allocates nothing, but a large batch must not turn quadratic.
type smallIndex[K comparable, V any] struct {
	keys []K
	vals []V
	m    map[K]int // built once len(keys) passes smallIndexScan
}

const smallIndexScan = 16

func newSmallIndex[K comparable, V any](capacity int) smallIndex[K, V] {
	return smallIndex[K, V]{keys: make([]K, 0, capacity), vals: make([]V, 0, capacity)}
}

func (s *smallIndex[K, V]) get(k K) (V, bool) {
	if s.m != nil {
		if i, ok := s.m[k]; ok {
			return s.vals[i], true
		}
	} else {
		for i := range s.keys {
			if s.keys[i] == k {
				return s.vals[i], true
			}
		}
	}
	var zero V
	return zero, false
}

func (s *smallIndex[K, V]) put(k K, v V) {
	s.keys = append(s.keys, k)
	s.vals = append(s.vals, v)
	switch {
	case s.m != nil:
		s.m[k] = len(s.keys) - 1
	case len(s.keys) > smallIndexScan:
		s.m = make(map[K]int, 2*len(s.keys))
		for i, key := range s.keys {
			s.m[key] = i
		}
	}
}
