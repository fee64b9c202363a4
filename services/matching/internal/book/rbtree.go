package book

import (
	"github.com/emirpasic/gods/trees/redblacktree"
	"github.com/emirpasic/gods/utils"
)

// rbIndex is the general-purpose baseline: a red-black tree from
// github.com/emirpasic/gods keyed by the price key. It boxes keys and
// values in interfaces and allocates a node per insert, which is what the
// benchmarks measure it against.
type rbIndex struct {
	tree *redblacktree.Tree
}

func newRBIndex() *rbIndex {
	return &rbIndex{tree: redblacktree.NewWith(utils.Int64Comparator)}
}

func (t *rbIndex) get(key int64) levelRef {
	v, ok := t.tree.Get(key)
	if !ok {
		return 0
	}
	return v.(levelRef)
}

func (t *rbIndex) insert(key int64, ref levelRef) { t.tree.Put(key, ref) }

func (t *rbIndex) remove(key int64) { t.tree.Remove(key) }

func (t *rbIndex) best() levelRef {
	n := t.tree.Right()
	if n == nil {
		return 0
	}
	return n.Value.(levelRef)
}

func (t *rbIndex) next(key int64) levelRef {
	n, ok := t.tree.Floor(key - 1)
	if !ok {
		return 0
	}
	return n.Value.(levelRef)
}

func (t *rbIndex) reset() { t.tree.Clear() }
