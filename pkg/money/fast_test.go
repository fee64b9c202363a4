package money

import (
	"testing"

	"github.com/shopspring/decimal"
)

// generalUnits is ToUnits without the fast path.
func generalUnits(s string, scale uint8) (int64, error) {
	d, err := Parse("f", s)
	if err != nil {
		return 0, err
	}
	return DecimalToUnits("f", d, scale)
}

// FuzzFastPathsAgree: the fast parser and formatter give exactly what the decimal path gives.
func FuzzFastPathsAgree(f *testing.F) {
	for _, s := range []string{"1", "-0.5", "101.25", "007", "1.", ".5", "-0", "9223372036854775807", "92233720368547758.08", "0.10"} {
		f.Add(s, uint8(2), int64(12345))
	}
	f.Fuzz(func(t *testing.T, s string, scale uint8, units int64) {
		scale %= MaxScale + 1
		if v, ok := fastUnits(s, scale); ok {
			g, err := generalUnits(s, scale)
			if err != nil || g != v {
				t.Fatalf("%q at scale %d: fast %d, general %d (%v)", s, scale, v, g, err)
			}
		}
		if got, ok := fastFormat(units, scale); ok {
			if want := decimal.New(units, -int32(scale)).String(); got != want {
				t.Fatalf("format %d at scale %d: fast %q, decimal %q", units, scale, got, want)
			}
		}
	})
}

func BenchmarkToUnits(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ToUnits("price", "50123.25", 2); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFormat(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = Format(5012325, 2)
	}
}
