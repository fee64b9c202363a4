package engine

import (
	"math/rand/v2"
	"testing"
)

// FuzzEngine decodes the input into the same operations as the property test (each decision takes
// a byte or two) and checks the same invariants after every step and the replay at the end.
func FuzzEngine(f *testing.F) {
	for seed := range uint64(8) {
		r := rand.New(rand.NewPCG(seed, 42))
		b := make([]byte, 64+r.IntN(2048))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		newHarness(t, &byteChooser{b: data}).run(200)
	})
}
