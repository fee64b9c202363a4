package exchange

import (
	"math"
	"math/big"
	"math/bits"

	"github.com/bourse-dev/bourse/pkg/money"
	"github.com/shopspring/decimal"
)

// Notional is a sum of price × quantity in ticks × lots. Prices and quantities each reach 2^50, so
// one product already exceeds int64; 128 bits hold any order's fills exactly.
type Notional struct{ Hi, Lo uint64 }

// add accumulates one fill of lots at ticks (both positive).
func (n *Notional) add(ticks, lots int64) {
	hi, lo := bits.Mul64(uint64(ticks), uint64(lots))
	var carry uint64
	n.Lo, carry = bits.Add64(n.Lo, lo, 0)
	n.Hi += hi + carry
}

// IsZero reports whether nothing has filled.
func (n Notional) IsZero() bool { return n.Hi == 0 && n.Lo == 0 }

// FormatNotional renders a notional as a decimal string at the price × quantity scale
// (PriceScale + QtyScale), exactly. The common case stays in int64 and allocates only the string.
func (s *Spec) FormatNotional(n Notional) string {
	if n.IsZero() {
		return "0"
	}
	scale := s.PriceScale + s.QtyScale
	if n.Hi == 0 && n.Lo <= math.MaxInt64 && s.LotUnits <= math.MaxInt64/s.TickUnits {
		if unit := s.TickUnits * s.LotUnits; unit <= math.MaxInt64/int64(n.Lo) {
			return money.Format(int64(n.Lo)*unit, scale)
		}
	}
	v := new(big.Int).SetUint64(n.Hi)
	v.Lsh(v, 64).Or(v, new(big.Int).SetUint64(n.Lo))
	v.Mul(v, big.NewInt(s.TickUnits)).Mul(v, big.NewInt(s.LotUnits))
	return decimal.NewFromBigInt(v, -int32(scale)).String()
}
