package flows

import (
	"hash/maphash"
	"sync/atomic"
)

// recentKeys remembers, lossily, the idempotency keys this process has lately claimed or answered
// from their records. It decides only the order of a deposit's two ways in: a key it knows is
// probably a retry and reads its record first (one read, no wait for a lane's writer); any other is
// probably new and goes to the lane's claim first (no read before it). Both ways are correct in
// either order, so a wrong guess (a slot overwritten, a hash collision, a restart) costs one step,
// never an answer. A slot holds the key's hash, so the memory is fixed: 512 KiB.
type recentKeys struct {
	seed  maphash.Seed
	slots [1 << 16]atomic.Uint64
}

func newRecentKeys() *recentKeys { return &recentKeys{seed: maphash.MakeSeed()} }

func (r *recentKeys) hash(caller, key string) uint64 {
	var h maphash.Hash
	h.SetSeed(r.seed)
	h.WriteString(caller)
	h.WriteByte(0)
	h.WriteString(key)
	return h.Sum64() | 1 // 0 is an empty slot
}

func (r *recentKeys) slot(h uint64) *atomic.Uint64 { return &r.slots[h&uint64(len(r.slots)-1)] }

func (r *recentKeys) seen(caller, key string) bool {
	h := r.hash(caller, key)
	return r.slot(h).Load() == h
}

func (r *recentKeys) remember(caller, key string) {
	h := r.hash(caller, key)
	r.slot(h).Store(h)
}
