package journal

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestTornTailIsTruncated cuts the last record of the last segment at
// every length, and also damages it in place: the complete records must
// survive and appending must continue with the torn record's seq.
func TestTornTailIsTruncated(t *testing.T) {
	base := t.TempDir()
	j := openJournal(t, base, Options{SegmentSize: 1 << 10})
	appendSync(t, j, 40)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	seg := lastSegmentPath(t, base)
	intact := readFile(t, seg)
	lastSize := frameHeaderSize + len(payloadFor(40))

	damages := map[string]func([]byte) []byte{}
	for cut := 1; cut < lastSize; cut += 3 {
		damages["cut "+strconv.Itoa(cut)] = func(b []byte) []byte { return b[:len(b)-cut] }
	}
	damages["flip payload byte"] = func(b []byte) []byte { b[len(b)-2] ^= 0x40; return b }
	damages["flip length"] = func(b []byte) []byte { b[len(b)-lastSize+4] ^= 0x01; return b }
	damages["zeroed record"] = func(b []byte) []byte { clear(b[len(b)-lastSize:]); return b }
	damages["zeros appended"] = func(b []byte) []byte { return append(b, make([]byte, 4096)...) }
	damages["garbage appended"] = func(b []byte) []byte { return append(b, "\x07\x00\x00\x00garbage"...) }

	for name, damage := range damages {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, base, dir)
			writeFile(t, filepath.Join(dir, filepath.Base(seg)), damage(append([]byte(nil), intact...)))

			j := openJournal(t, dir, Options{SegmentSize: 1 << 10})
			want := uint64(39)
			if name == "zeros appended" || name == "garbage appended" {
				want = 40 // only the junk after the last record goes
			}
			if got := j.LastSeq(); got != want {
				t.Fatalf("LastSeq after recovery %d, want %d", got, want)
			}
			appendSync(t, j, 5)
			checkRecords(t, replayAll(t, j, 1), 1, want+5)
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			// Recovery left a clean file: a second open changes nothing.
			j = openJournal(t, dir, Options{SegmentSize: 1 << 10})
			checkRecords(t, replayAll(t, j, 1), 1, want+5)
		})
	}
}

// TestTornBatchIsTruncated damages the middle of the last batch: the
// records after the damage belong to the same unacknowledged write and go
// with it.
func TestTornBatchIsTruncated(t *testing.T) {
	dir := t.TempDir()
	data := buildBatches(1, 3, 1, 4)
	// Damage record 6, the second of the last batch.
	off := frameOffset(data, 6)
	data[off+frameHeaderSize] ^= 0xff
	writeFile(t, filepath.Join(dir, segmentName(1)), data)
	j := openJournal(t, dir, Options{})
	if got := j.LastSeq(); got != 5 {
		t.Fatalf("LastSeq %d, want 5", got)
	}
	checkRecords(t, replayAll(t, j, 1), 1, 5)
}

// TestCorruptionBeforeLaterBatchIsRefused damages a record that a later
// batch follows: the damaged one had been fsynced, so Open must refuse.
func TestCorruptionBeforeLaterBatchIsRefused(t *testing.T) {
	for _, target := range []uint64{1, 2, 5, 6} {
		dir := t.TempDir()
		data := buildBatches(1, 3, 1, 2, 2) // batches: 1-3, 4, 5-6, 7-8
		data[frameOffset(data, target)+frameHeaderSize+1] ^= 0x10
		writeFile(t, filepath.Join(dir, segmentName(1)), data)
		j, err := Open(dir, Options{})
		if err == nil {
			j.Close()
			t.Fatalf("record %d damaged mid-file: Open succeeded", target)
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("record %d damaged mid-file: error %v does not wrap ErrCorrupt", target, err)
		}
		t.Logf("record %d: %v", target, err)
	}
}

func TestMidFileCorruptionAfterRealAppends(t *testing.T) {
	dir := t.TempDir()
	j := openJournal(t, dir, Options{})
	appendSync(t, j, 10)
	j.Close()
	seg := lastSegmentPath(t, dir)
	data := readFile(t, seg)
	data[frameOffset(data, 3)+frameHeaderSize+2] ^= 0x01
	writeFile(t, seg, data)
	if j, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) {
		if err == nil {
			j.Close()
		}
		t.Fatalf("Open with record 3 of 10 damaged: %v, want ErrCorrupt", err)
	}
}

func TestValidRecordOutOfSequenceIsRefused(t *testing.T) {
	dir := t.TempDir()
	data := append(buildBatches(1, 2), buildBatches(4, 1)...) // seq 3 missing
	writeFile(t, filepath.Join(dir, segmentName(1)), data)
	if j, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) {
		if err == nil {
			j.Close()
		}
		t.Fatalf("Open with a gap in seqs: %v, want ErrCorrupt", err)
	}
}

// TestCorruptionInEarlierSegment: Open reads only the last segment, so
// damage in an earlier one surfaces in Replay.
func TestCorruptionInEarlierSegment(t *testing.T) {
	dir := t.TempDir()
	j := openJournal(t, dir, Options{SegmentSize: 1 << 10})
	appendSync(t, j, 100)
	j.Close()
	segs := segmentFiles(t, dir)
	first := filepath.Join(dir, segmentName(segs[0]))
	data := readFile(t, first)
	data[frameOffset(data, 2)+frameHeaderSize] ^= 0x01
	writeFile(t, first, data)

	j = openJournal(t, dir, Options{SegmentSize: 1 << 10})
	recs, err := collect(j, 1)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Replay over a damaged segment: %v, want ErrCorrupt", err)
	}
	if len(recs) != 1 {
		t.Fatalf("Replay yielded %d records before the damaged one, want 1", len(recs))
	}
	// Replay from a later segment does not read the damaged one.
	checkRecords(t, replayAll(t, j, segs[1]), segs[1], 100)
}

func TestMissingSegmentIsReported(t *testing.T) {
	dir := t.TempDir()
	j := openJournal(t, dir, Options{SegmentSize: 1 << 10})
	appendSync(t, j, 100)
	j.Close()
	segs := segmentFiles(t, dir)
	if err := os.Remove(filepath.Join(dir, segmentName(segs[2]))); err != nil {
		t.Fatal(err)
	}
	j = openJournal(t, dir, Options{SegmentSize: 1 << 10})
	if _, err := collect(j, 1); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Replay across a missing segment: %v, want ErrCorrupt", err)
	}
}

func TestLeftoverTemporariesAreRemoved(t *testing.T) {
	dir := t.TempDir()
	j := openJournal(t, dir, Options{})
	appendSync(t, j, 2)
	j.Close()
	tmp := filepath.Join(dir, snapshotName(2)+temporarySuffix)
	writeFile(t, tmp, []byte("half a snapshot"))
	openJournal(t, dir, Options{})
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file survived Open: %v", err)
	}
}

// frameOffset returns the offset of record seq in segment bytes.
func frameOffset(data []byte, seq uint64) int {
	for off := 0; off+frameHeaderSize <= len(data); {
		if binary.LittleEndian.Uint64(data[off+8:]) == seq {
			return off
		}
		off += frameHeaderSize + int(binary.LittleEndian.Uint32(data[off+4:])&^batchStartBit)
	}
	panic("record not found")
}

// copyDir copies the regular files of src into dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			writeFile(t, filepath.Join(dst, e.Name()), readFile(t, filepath.Join(src, e.Name())))
		}
	}
}
