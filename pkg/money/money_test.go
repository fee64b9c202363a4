package money

import (
	"strings"
	"testing"

	"github.com/bourse-dev/bourse/pkg/errs"
)

func TestToUnits(t *testing.T) {
	cases := []struct {
		in    string
		scale uint8
		want  int64
		bad   bool
	}{
		{"101.25", 2, 10125, false},
		{"101.250000", 2, 10125, false},
		{"-0.01", 2, -1, false},
		{"0", 8, 0, false},
		{"1", 18, 1_000_000_000_000_000_000, false},
		{"9.223372036854775807", 18, 9223372036854775807, false},
		{"9.223372036854775808", 18, 0, true},
		{"101.255", 2, 0, true},
		{"1e3", 0, 0, true},
		{" 1", 0, 0, true},
		{"abc", 0, 0, true},
		{"", 0, 0, true},
		{"1_000", 0, 0, true},
	}
	for _, c := range cases {
		got, err := ToUnits("price", c.in, c.scale)
		if c.bad {
			if err == nil || errs.KindOf(err) != errs.KindInvalidArgument || !strings.HasPrefix(err.Error(), "price:") {
				t.Errorf("ToUnits(%q, %d) = %d, %v; want InvalidArgument naming price", c.in, c.scale, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ToUnits(%q, %d) = %d, %v; want %d", c.in, c.scale, got, err, c.want)
		}
	}
}

func TestFormatRoundTrips(t *testing.T) {
	for _, c := range []struct {
		units int64
		scale uint8
		want  string
	}{{10125, 2, "101.25"}, {-1, 2, "-0.01"}, {0, 8, "0"}, {150_000_000, 8, "1.5"}, {7, 0, "7"}} {
		s := Format(c.units, c.scale)
		if s != c.want {
			t.Errorf("Format(%d, %d) = %q, want %q", c.units, c.scale, s, c.want)
		}
		back, err := ToUnits("x", s, c.scale)
		if err != nil || back != c.units {
			t.Errorf("round trip %d → %q → %d, %v", c.units, s, back, err)
		}
	}
}

func FuzzToUnits(f *testing.F) {
	for _, s := range []string{"1", "-0.5", "101.25", "1e5", "9223372036854775807", ".5", "+1", "0.000000000000000001"} {
		f.Add(s, uint8(2))
	}
	f.Fuzz(func(t *testing.T, s string, scale uint8) {
		scale %= MaxScale + 1
		v, err := ToUnits("f", s, scale)
		if err != nil {
			if errs.KindOf(err) != errs.KindInvalidArgument {
				t.Fatalf("error kind %v for %q", errs.KindOf(err), s)
			}
			return
		}
		// Whatever parses must format back to the same value.
		back, err := ToUnits("f", Format(v, scale), scale)
		if err != nil || back != v {
			t.Fatalf("%q at scale %d: %d → %q → %d (%v)", s, scale, v, Format(v, scale), back, err)
		}
	})
}
