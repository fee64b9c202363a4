package engine

import (
	"math/rand/v2"
	"testing"
	"unsafe"
)

// TestIDTableMatchesMap drives the table and a map with the same random inserts and removes,
// including long runs of sequential ids like the reservation counter produces.
func TestIDTableMatchesMap(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	var tab idTable
	ref := map[uint64]uint64{}
	next := uint64(1)
	for i := range 200_000 {
		switch op := r.IntN(10); {
		case op < 5: // a new sequential id
			if !tab.insert(next, next*3) {
				t.Fatalf("step %d: insert %d refused", i, next)
			}
			ref[next] = next * 3
			next++
		case op < 6 && next > 1: // an id already handed out, maybe still present
			k := 1 + r.Uint64N(next-1)
			_, had := ref[k]
			if got := tab.insert(k, 1); got == had {
				t.Fatalf("step %d: insert(%d) = %v with key present %v", i, k, got, had)
			}
			if !had {
				ref[k] = 1
			}
		default: // remove something, usually present
			k := 1 + r.Uint64N(next)
			want, had := ref[k]
			got, ok := tab.remove(k)
			if ok != had || got != want {
				t.Fatalf("step %d: remove(%d) = %d,%v want %d,%v", i, k, got, ok, want, had)
			}
			delete(ref, k)
		}
		if tab.count != len(ref) {
			t.Fatalf("step %d: count %d, want %d", i, tab.count, len(ref))
		}
	}
	for k, v := range ref {
		if got, ok := tab.get(k); !ok || got != v {
			t.Fatalf("get(%d) = %d,%v want %d", k, got, ok, v)
		}
	}
	if tab.insert(0, 1) {
		t.Fatal("key 0 accepted")
	}
}

func TestIDTableSteadyStateDoesNotAllocate(t *testing.T) {
	var tab idTable
	for k := uint64(1); k <= 100; k++ {
		tab.insert(k, k)
	}
	next := uint64(101)
	allocs := testing.AllocsPerRun(10_000, func() {
		tab.insert(next, next)
		tab.remove(next - 100)
		next++
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per insert+remove at constant size", allocs)
	}
}

func TestDirectoryShardSize(t *testing.T) {
	if size := unsafe.Sizeof(directoryShard{}); size != 128 {
		t.Fatalf("directory shards are %d bytes, want 128", size)
	}
}
