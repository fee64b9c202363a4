package engine

// tokenScale counts tokens in nano-tokens, so that refilling for an elapsed time in nanoseconds is the
// exact integer elapsed × PerSecond.
const tokenScale = 1_000_000_000

// tokenBucket is an account's order-rate limiter. Time comes from the caller (OrderCheck.Now); there
// is no clock and no background refill: the bucket catches up whenever it is asked. Its state is
// kept in memory only; after a restart every bucket starts full.
type tokenBucket struct {
	nanoTokens int64
	last       int64 // the latest Now seen, unix nanoseconds
	primed     bool  // false until first use, when the bucket starts full
}

// take refills the bucket for the time since the last call and removes one token, reporting
// whether there was one. A Now earlier than one already seen adds nothing, so out-of-order callers
// cannot mint tokens by moving time back and forth.
func (b *tokenBucket) take(now int64, r Rate) bool {
	if r.PerSecond <= 0 {
		return true
	}
	capacity := r.Burst * tokenScale // validated not to overflow
	switch {
	case !b.primed:
		b.nanoTokens, b.last, b.primed = capacity, now, true
	case now > b.last:
		elapsed := uint64(now) - uint64(b.last) // exact even when the int64 difference would overflow
		missing := uint64(capacity - b.nanoTokens)
		// Compare in time rather than tokens: elapsed × rate can overflow, the division cannot.
		if full := (missing + uint64(r.PerSecond) - 1) / uint64(r.PerSecond); elapsed >= full {
			b.nanoTokens = capacity
		} else {
			b.nanoTokens += int64(elapsed) * r.PerSecond // < missing, so no overflow
		}
		b.last = now
	}
	if b.nanoTokens > capacity { // the burst was lowered since the last call
		b.nanoTokens = capacity
	}
	if b.nanoTokens < tokenScale {
		return false
	}
	b.nanoTokens -= tokenScale
	return true
}
