package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"path/filepath"
	"testing"
)

// FuzzDecode: Decode never panics, fails only with ErrBadCommand, and
// what it accepts re-encodes to the same bytes (the encoding is
// canonical).
func FuzzDecode(f *testing.F) {
	for _, c := range sampleCommands() {
		f.Add(AppendEncode(nil, c))
	}
	f.Add([]byte{})
	f.Add([]byte{commandVersion, byte(CommandSubmit)})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrBadCommand) {
				t.Fatalf("Decode error %v does not wrap ErrBadCommand", err)
			}
			return
		}
		if enc := AppendEncode(nil, c); !bytes.Equal(enc, b) {
			t.Fatalf("Decode(%x) = %+v, which encodes to %x", b, c, enc)
		}
	})
}

// FuzzJournalOpen writes arbitrary bytes as a segment and opens the
// journal: Open must succeed or fail, never panic. The low bit of layout
// makes the bytes the last segment, which Open recovers, or an earlier
// one, which only Replay reads. The next bit fixes up the checksums of
// whatever frames the bytes hold, so that the fuzzer also explores
// well-formed records with odd sequence numbers, lengths and batch marks.
// When the bytes are the last segment and Open succeeds, the journal must
// be fully usable: it replays without error, appends with the next seq
// and reopens to the same records.
func FuzzJournalOpen(f *testing.F) {
	valid := buildBatches(1, 3, 1, 2)
	f.Add(byte(0), valid)
	f.Add(byte(1), valid)
	f.Add(byte(0), valid[:len(valid)-5])
	f.Add(byte(0), append(bytes.Clone(valid), 0, 0, 0))
	flipped := bytes.Clone(valid)
	flipped[frameHeaderSize+2] ^= 1
	f.Add(byte(0), flipped)
	f.Add(byte(1), flipped)
	f.Add(byte(0), []byte{})
	f.Add(byte(0), make([]byte, 40))
	f.Add(byte(2), make([]byte, 40))
	outOfOrder := append(buildBatches(2, 1), buildBatches(1, 2)...)
	f.Add(byte(2), outOfOrder)
	f.Fuzz(func(t *testing.T, layout byte, data []byte) {
		dir := t.TempDir()
		opts := Options{}
		if layout&2 != 0 {
			fixChecksums(data)
		}
		writeFile(t, filepath.Join(dir, segmentName(1)), data)
		asLast := layout&1 == 0
		if !asLast {
			writeFile(t, filepath.Join(dir, segmentName(uint64(layout>>2)+2)), nil)
		}
		j, err := Open(dir, opts)
		if err != nil {
			return
		}
		recs, replayErr := collect(j, 1)
		if !asLast {
			j.Close()
			return
		}
		if replayErr != nil {
			t.Fatalf("Replay after a successful Open: %v", replayErr)
		}
		if uint64(len(recs)) != j.LastSeq() {
			t.Fatalf("replayed %d records, LastSeq %d", len(recs), j.LastSeq())
		}
		seq, err := j.AppendSync([]byte("after"))
		if err != nil || seq != uint64(len(recs))+1 {
			t.Fatalf("AppendSync after recovery = %d, %v; want seq %d", seq, err, len(recs)+1)
		}
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
		j, err = Open(dir, opts)
		if err != nil {
			t.Fatalf("reopen after recovery: %v", err)
		}
		defer j.Close()
		again, err := collect(j, 1)
		if err != nil || len(again) != len(recs)+1 || string(again[len(recs)].Payload) != "after" {
			t.Fatalf("reopened journal replays %d records, %v", len(again), err)
		}
	})
}

// fixChecksums sets the checksum of every whole frame in data, walking
// them by their length words.
func fixChecksums(data []byte) {
	for off := 0; off+frameHeaderSize <= len(data); {
		end := off + frameHeaderSize + int(binary.LittleEndian.Uint32(data[off+4:])&^batchStartBit)
		if end > len(data) {
			return
		}
		binary.LittleEndian.PutUint32(data[off:], crc32.Checksum(data[off+4:end], castagnoli))
		off = end
	}
}
