package cli

import (
	"strings"
	"testing"
)

// Sizes a run cannot have are usage errors, found before anything is sent (--orders 0 used to reach
// the progress bar as 0/0 and panic in it).
func TestBenchOrdersRefusesImpossibleSizes(t *testing.T) {
	for _, flag := range []string{"--orders", "--streams", "--window", "--batch"} {
		for _, v := range []string{"0", "-1"} {
			var out, errOut strings.Builder
			code := Main([]string{"--addr", "matching=127.0.0.1:1", "bench", "orders", flag, v}, &out, &errOut)
			if code != ExitUsage || !strings.Contains(errOut.String(), flag) {
				t.Errorf("%s %s: exit %d, want %d naming the flag; stderr %q", flag, v, code, ExitUsage, errOut.String())
			}
		}
	}
}

// The bar draws any fraction, a 0/0 one included.
func TestProgressLineOfAnyFraction(t *testing.T) {
	var b strings.Builder
	p := newProgressBar(&b)
	for _, f := range []float64{0, 0.5, 1, -1, 2, 0.0 / zero()} {
		if line := p.line("x", f, ""); !strings.Contains(line, "%") {
			t.Errorf("%v: %q", f, line)
		}
	}
}

func zero() float64 { return 0 }
