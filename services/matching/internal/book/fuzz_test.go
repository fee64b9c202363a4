package book

import (
	"bytes"
	"slices"
	"testing"
)

// FuzzBook decodes random bytes into a command sequence and runs it on a
// ladder book and a red-black tree book. After every command both must
// satisfy the invariants and agree with the shadow rebuilt from their
// events; at the end both index implementations must have produced the
// same events and the same snapshot. The ladder book's run also restores
// itself from snapshots along the way, so snapshot bugs show up as a
// difference from the tree book, which never restores.
func FuzzBook(f *testing.F) {
	f.Add([]byte{0, 1, 0, 0, 0, 0, 5, 3, 0, 0, 0})
	f.Add([]byte{
		0, 1, 1, 0, 0, 0, 10, 5, 0, 0, 0, // sell 5 @100 acc 1
		0, 2, 2, 1, 0, 0, 10, 5, 0, 0, 0, // buy crosses
		0, 3, 1, 0, 5, 0, 12, 12, 3, 0, 0, 0, // stop
		14, 3,
		15,
		10, 1, 0, 11, 0, 4, 1,
	})
	f.Fuzz(checkCommandBytes)
}

// checkCommandBytes is the body of FuzzBook.
func checkCommandBytes(t *testing.T, data []byte) {
	if len(data) > 4096 {
		return
	}
	{
		cmds := decodeCommands(data)
		plain := slices.DeleteFunc(slices.Clone(cmds), func(c command) bool { return c.kind == cmdSnapshot })
		ladderLog, ladderSnap := runChecked(t, newBook(fuzzInstrument, indexLadder), cmds)
		treeLog, treeSnap := runChecked(t, newBook(fuzzInstrument, indexRBTree), plain)
		if d := diffLines(ladderLog, treeLog); d != "" {
			t.Fatalf("ladder and tree books diverge:\n%s", d)
		}
		if !bytes.Equal(ladderSnap, treeSnap) {
			t.Fatal("ladder and tree snapshots differ")
		}
	}
}
