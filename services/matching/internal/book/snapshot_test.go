package book

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"slices"
	"testing"
)

func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	return data
}

// randomCommands returns a random command stream without in-place
// restores.
func randomCommands(seed uint64, n int) []command {
	cmds := decodeCommands(randomBytes(seed, n))
	return slices.DeleteFunc(cmds, func(c command) bool { return c.kind == cmdSnapshot })
}

func runAll(b *Book, cmds []command) []Event {
	var all []Event
	for i := range cmds {
		all = cmds[i].apply(b, all)
	}
	return all
}

func TestDeterminism(t *testing.T) {
	for seed := range uint64(20) {
		cmds := randomCommands(seed, 20_000)
		b1, b2 := newBook(fuzzInstrument, indexLadder), newBook(fuzzInstrument, indexLadder)
		e1, e2 := runAll(b1, cmds), runAll(b2, cmds)
		if !slices.Equal(e1, e2) {
			t.Fatalf("seed %d: event streams differ", seed)
		}
		if !bytes.Equal(b1.AppendSnapshot(nil), b2.AppendSnapshot(nil)) {
			t.Fatalf("seed %d: snapshots differ", seed)
		}
		// The other index implementation must not change any outcome.
		b3 := newBook(fuzzInstrument, indexRBTree)
		if e3 := runAll(b3, cmds); !slices.Equal(e1, e3) {
			t.Fatalf("seed %d: tree book events differ", seed)
		}
		if !bytes.Equal(b1.AppendSnapshot(nil), b3.AppendSnapshot(nil)) {
			t.Fatalf("seed %d: tree book snapshot differs", seed)
		}
	}
}

// TestReplayFromSnapshot restores a book from a mid-stream snapshot and
// replays the rest of the journal: events and final state must match the
// live book exactly.
func TestReplayFromSnapshot(t *testing.T) {
	for seed := range uint64(20) {
		cmds := randomCommands(100+seed, 20_000)
		mid := len(cmds) / 2
		live := New(fuzzInstrument)
		runAll(live, cmds[:mid])
		snap := live.AppendSnapshot(nil)
		liveTail := runAll(live, cmds[mid:])

		replayed := newBook(Instrument{}, indexKinds[seed%2])
		if err := replayed.Restore(snap); err != nil {
			t.Fatalf("seed %d: restore: %v", seed, err)
		}
		if err := replayed.checkInvariants(); err != nil {
			t.Fatalf("seed %d: restored book: %v", seed, err)
		}
		if replayed.Instrument() != live.Instrument() {
			t.Fatalf("seed %d: instrument not restored", seed)
		}
		replayedTail := runAll(replayed, cmds[mid:])
		if !slices.Equal(liveTail, replayedTail) {
			t.Fatalf("seed %d: replayed events differ", seed)
		}
		if !bytes.Equal(live.AppendSnapshot(nil), replayed.AppendSnapshot(nil)) {
			t.Fatalf("seed %d: replayed snapshot differs", seed)
		}
	}
}

func TestRestoreRejectsDamage(t *testing.T) {
	b := New(fuzzInstrument)
	runAll(b, randomCommands(7, 5000))
	runAll(b, []command{
		sell(101, 105, 5, acc(1), display(2)), buy(102, 91, 3, acc(2), gtd(1<<40)),
		stopLimit(103, Sell, 90, 92, 4, acc(2), tif(DAY), expireAt(1<<41)),
	})
	if b.Len() < 3 {
		t.Fatal("test needs a non-empty book")
	}
	snap := b.AppendSnapshot(nil)
	target := New(fuzzInstrument)
	for i := range snap {
		bad := slices.Clone(snap)
		bad[i] ^= 0x10
		if err := target.Restore(bad); !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("flipped byte %d: err %v", i, err)
		}
		if target.Len() != 0 || target.checkInvariants() != nil {
			t.Fatalf("flipped byte %d: book not left empty", i)
		}
	}
	for n := range len(snap) {
		if err := target.Restore(snap[:n]); err == nil {
			t.Fatalf("truncated to %d bytes: no error", n)
		}
	}
	if err := target.Restore(snap); err != nil {
		t.Fatal(err)
	}
}

// FuzzRestore feeds arbitrary bytes to Restore, with the checksum fixed
// up so the decoder itself is exercised: it must fail cleanly or produce
// a consistent book.
func FuzzRestore(f *testing.F) {
	b := New(fuzzInstrument)
	runAll(b, randomCommands(3, 600))
	f.Add(b.AppendSnapshot(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		body := data[:max(len(data)-4, 0)]
		fixed := appendCRC(slices.Clone(body))
		nb := New(fuzzInstrument)
		if err := nb.Restore(fixed); err != nil {
			if nb.Len() != 0 {
				t.Fatal("failed restore left orders behind")
			}
			return
		}
		if err := nb.checkInvariants(); err != nil {
			t.Fatalf("restored an inconsistent book: %v", err)
		}
		if again := nb.AppendSnapshot(nil); !bytes.Equal(again, fixed) {
			t.Fatal("accepted snapshot is not canonical")
		}
		runAll(nb, randomCommands(4, 300))
		if err := nb.checkInvariants(); err != nil {
			t.Fatalf("commands on a restored book: %v", err)
		}
	})
}

func appendCRC(body []byte) []byte {
	return binary.LittleEndian.AppendUint32(body, crc32.ChecksumIEEE(body))
}
