package dataset

import (
	"slices"
	"testing"
)

func TestShardRangeCoversOnce(t *testing.T) {
	for n := range 23 {
		for world := 1; world <= 6; world++ {
			next := 0
			for rank := range world {
				lo, hi := ShardRange(n, rank, world)
				if lo != next || hi < lo || hi-lo > n/world+1 || hi-lo < n/world {
					t.Fatalf("n %d world %d rank %d: [%d, %d) after %d", n, world, rank, lo, hi, next)
				}
				next = hi
			}
			if next != n {
				t.Fatalf("n %d world %d: shards end at %d", n, world, next)
			}
		}
	}
}

// TestPlanWorkersSeeWhatOneWorkerSees: for 1..5 workers, the ranks' local batches concatenated in
// rank order are the one-worker batch, every epoch is a permutation, and epochs differ.
func TestPlanWorkersSeeWhatOneWorkerSees(t *testing.T) {
	p, err := NewPlan(103, 10, 7)
	if err != nil {
		t.Fatal(err)
	}
	if p.StepsPerEpoch() != 10 {
		t.Fatalf("StepsPerEpoch %d", p.StepsPerEpoch())
	}
	prev := []int(nil)
	for epoch := range 3 {
		perm := p.Perm(epoch)
		if !slices.Equal(perm, p.Perm(epoch)) {
			t.Fatal("Perm is not a function of (seed, epoch)")
		}
		sorted := slices.Sorted(slices.Values(perm))
		for i, v := range sorted {
			if v != i {
				t.Fatalf("epoch %d is not a permutation", epoch)
			}
		}
		if slices.Equal(perm, prev) {
			t.Fatalf("epoch %d repeats the previous order", epoch)
		}
		prev = perm
		seen := map[int]bool{}
		for s := range p.StepsPerEpoch() {
			step := int64(epoch*p.StepsPerEpoch() + s)
			if p.Epoch(step) != epoch {
				t.Fatalf("step %d: epoch %d, want %d", step, p.Epoch(step), epoch)
			}
			g := p.Global(perm, step)
			for world := 1; world <= 5; world++ {
				var joined []int
				for rank := range world {
					joined = append(joined, p.Local(perm, step, rank, world)...)
				}
				if !slices.Equal(joined, g) {
					t.Fatalf("step %d world %d: %v, want %v", step, world, joined, g)
				}
			}
			for _, i := range g {
				if seen[i] {
					t.Fatalf("epoch %d visits sample %d twice", epoch, i)
				}
				seen[i] = true
			}
		}
	}
	other, _ := NewPlan(103, 10, 8)
	if slices.Equal(other.Perm(0), p.Perm(0)) {
		t.Fatal("different seeds, same order")
	}
}

func TestNewPlanRejects(t *testing.T) {
	if _, err := NewPlan(10, 0, 1); err == nil {
		t.Error("batch 0 accepted")
	}
	if _, err := NewPlan(10, 11, 1); err == nil {
		t.Error("batch larger than the dataset accepted")
	}
}

func TestGatherAndShard(t *testing.T) {
	d := Dataset{X: []float32{0, 0, 1, 1, 2, 2, 3, 3, 4, 4}, Y: []int32{0, 1, 2, 3, 4}, N: 5, Dim: 2, Classes: 5}
	x, y := make([]float32, 4), make([]int32, 2)
	Gather(d, []int{3, 1}, x, y)
	if !slices.Equal(x, []float32{3, 3, 1, 1}) || !slices.Equal(y, []int32{3, 1}) {
		t.Fatalf("Gather: %v %v", x, y)
	}
	s := Shard(d, 1, 2)
	if s.N != 2 || !slices.Equal(s.Y, []int32{3, 4}) || !slices.Equal(s.X, []float32{3, 3, 4, 4}) {
		t.Fatalf("Shard(1, 2): %+v", s)
	}
}
