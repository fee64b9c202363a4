package engine

import (
	"math/rand/v2"
	"testing"
)

// TestPropertyRandomWalk runs long random sequences of credits, debits, checks, partial and complete
// fills at or better than the limit, releases, limit and kill-switch changes, and failing stores,
// checking after every step that no balance goes negative, reserved equals what open reservations
// hold, and money is conserved (accounts + fee account = credits − debits), then that replaying the
// stored events rebuilds the same engine.
func TestPropertyRandomWalk(t *testing.T) {
	seeds, steps := 24, 1500
	if testing.Short() {
		seeds, steps = 4, 500
	}
	for seed := range uint64(seeds) {
		h := newHarness(t, randChooser{rand.New(rand.NewPCG(seed, 0x5eed))})
		h.run(steps)
		if len(h.applied) == 0 {
			t.Fatalf("seed %d: the walk never filled anything", seed)
		}
	}
}
