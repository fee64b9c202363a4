package engine

import (
	"math"
	"math/bits"
)

// Money never wraps: every product or sum that could leave int64 is computed with an overflow check,
// and the caller turns a failed check into a reject or an error. The saturating variants are only
// for derived figures (unrealised PnL, drawdown) that are reported or compared, never stored.

const ppm = 1_000_000 // parts per million

// pow10 holds 10^0 … 10^18, every power of ten that fits in int64.
var pow10 = func() [19]int64 {
	var p [19]int64
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// mulNonNeg returns a*b for a, b >= 0, or false when the product does not fit in int64.
func mulNonNeg(a, b int64) (int64, bool) {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, false
	}
	return int64(lo), true
}

// addChecked returns a+b, or false on overflow.
func addChecked(a, b int64) (int64, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}

// subChecked returns a-b, or false on overflow.
func subChecked(a, b int64) (int64, bool) {
	d := a - b
	if (b > 0 && d > a) || (b < 0 && d < a) {
		return 0, false
	}
	return d, true
}

// satAdd returns a+b clamped to the int64 range.
func satAdd(a, b int64) int64 {
	if s, ok := addChecked(a, b); ok {
		return s
	}
	if b > 0 {
		return math.MaxInt64
	}
	return math.MinInt64
}

// satSub returns a-b clamped to the int64 range.
func satSub(a, b int64) int64 {
	if d, ok := subChecked(a, b); ok {
		return d
	}
	if b < 0 {
		return math.MaxInt64
	}
	return math.MinInt64
}

// mulDivFloor returns floor(a*b/c) for a, b >= 0 and c > 0 with a 128-bit intermediate, or false when
// the quotient does not fit in int64.
func mulDivFloor(a, b, c int64) (int64, bool) {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi >= uint64(c) {
		return 0, false
	}
	q, _ := bits.Div64(hi, lo, uint64(c))
	if q > math.MaxInt64 {
		return 0, false
	}
	return int64(q), true
}

// ceilPPM returns ceil(n*rate/1e6) for n >= 0 and 0 <= rate <= 1e6. The result never exceeds n, so it
// cannot overflow; rounding up means a reserved fee always covers the fee charged on the same amount.
func ceilPPM(n, rate int64) int64 {
	hi, lo := bits.Mul64(uint64(n), uint64(rate))
	lo, carry := bits.Add64(lo, ppm-1, 0)
	hi += carry
	// n < 2^63 and rate <= 1e6 keep hi below 2^19 < 1e6, so Div64 cannot fault.
	q, _ := bits.Div64(hi, lo, ppm)
	return int64(q)
}

// outsideBand reports whether |price-ref|/ref > bandPPM/1e6, compared exactly as
// |price-ref|*1e6 > bandPPM*ref in 128 bits. All inputs are positive.
func outsideBand(price, ref, bandPPM int64) bool {
	var diff uint64
	if price >= ref {
		diff = uint64(price - ref)
	} else {
		diff = uint64(ref - price)
	}
	lhsHi, lhsLo := bits.Mul64(diff, ppm)
	rhsHi, rhsLo := bits.Mul64(uint64(bandPPM), uint64(ref))
	return lhsHi > rhsHi || (lhsHi == rhsHi && lhsLo > rhsLo)
}

// floorDiv divides rounding towards negative infinity, so that times before 1970 still fall into the
// right trading day.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
