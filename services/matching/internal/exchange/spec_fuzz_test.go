package exchange

import (
	"testing"

	"github.com/bourse-dev/bourse/pkg/errs"
)

func fuzzSpec(t testing.TB) Spec {
	s, err := NewSpec(SpecInput{Symbol: "BTC-USD", TickSize: "0.5", LotSize: "0.001", MaxQty: "1000", MaxPrice: "1000000"},
		RiskSymbol{PriceScale: 2, QtyScale: 4, QuoteScale: 8, TakerFeeRate: "0.001"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// FuzzSpecParse: any string is either refused with InvalidArgument naming the field, or parses to
// a tick or lot count in range that formats back to the same value.
func FuzzSpecParse(f *testing.F) {
	for _, s := range []string{"50000", "50000.5", "0.25", "-1", "1e3", "0", "1000000.5", " 1", "0.0010", "999999999999999999999"} {
		f.Add(s)
	}
	spec := fuzzSpec(f)
	f.Fuzz(func(t *testing.T, v string) {
		ticks, err := spec.Ticks("price", v)
		if err != nil {
			if e, ok := err.(*errs.Error); !ok || e.Kind != errs.KindInvalidArgument || e.Field != "price" {
				t.Fatalf("Ticks(%q): %v is not InvalidArgument naming price", v, err)
			}
		} else {
			if ticks < 1 || ticks > spec.MaxTicks {
				t.Fatalf("Ticks(%q) = %d out of range", v, ticks)
			}
			if again, err := spec.Ticks("price", spec.FormatPrice(ticks)); err != nil || again != ticks {
				t.Fatalf("round trip of %q: %d → %q → %d, %v", v, ticks, spec.FormatPrice(ticks), again, err)
			}
		}
		lots, err := spec.Lots("quantity", v)
		if err == nil {
			if lots < 1 {
				t.Fatalf("Lots(%q) = %d", v, lots)
			}
			if again, err := spec.Lots("quantity", spec.FormatQty(lots)); err != nil || again != lots {
				t.Fatalf("round trip of %q: %d → %d, %v", v, lots, again, err)
			}
		}
	})
}

func TestSpecRejectsOffTick(t *testing.T) {
	spec := fuzzSpec(t)
	for _, v := range []string{"50000.25", "0.1", "1000000.5"} {
		if _, err := spec.Ticks("price", v); errs.KindOf(err) != errs.KindInvalidArgument {
			t.Errorf("%s: %v", v, err)
		}
	}
	if got, err := spec.Ticks("price", "50000.5"); err != nil || got != 100001 {
		t.Fatalf("50000.5 on a 0.5 tick: %d, %v", got, err)
	}
	fee := spec.TakerFee(100001, 150) // 50000.5 × 0.15 × 0.001 = 7.500075
	if fee != "7.500075" {
		t.Fatalf("fee %s", fee)
	}
}
