package journal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func snapshotData(seq uint64) []byte { return fmt.Appendf(nil, "state after %d", seq) }

func checkLatest(t *testing.T, j *Journal, wantSeq uint64) {
	t.Helper()
	seq, data, ok, err := j.LatestSnapshot()
	if err != nil || !ok {
		t.Fatalf("LatestSnapshot: ok %v, err %v", ok, err)
	}
	if seq != wantSeq || string(data) != string(snapshotData(wantSeq)) {
		t.Fatalf("LatestSnapshot = %d %q, want %d %q", seq, data, wantSeq, snapshotData(wantSeq))
	}
}

func snapshotFiles(t *testing.T, dir string) []uint64 {
	t.Helper()
	l, err := listDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return l.snapshots
}

func TestSnapshotWriteReadKeep(t *testing.T) {
	dir := t.TempDir()
	j := openJournal(t, dir, Options{KeepSnapshots: 3})
	if err := j.WriteSnapshot(0, snapshotData(0)); err != nil {
		t.Fatal(err)
	}
	checkLatest(t, j, 0)
	for seq := uint64(10); seq <= 50; seq += 10 {
		appendSync(t, j, 10)
		if err := j.WriteSnapshot(seq, snapshotData(seq)); err != nil {
			t.Fatal(err)
		}
		checkLatest(t, j, seq)
	}
	if got, want := snapshotFiles(t, dir), []uint64{30, 40, 50}; !slices.Equal(got, want) {
		t.Fatalf("snapshots kept %v, want %v", got, want)
	}
	// Rewriting the same seq replaces it.
	if err := j.WriteSnapshot(50, snapshotData(50)); err != nil {
		t.Fatal(err)
	}
	if err := j.WriteSnapshot(51, nil); err == nil {
		t.Fatal("snapshot beyond the last record accepted")
	}
	j.Close()

	j = openJournal(t, dir, Options{KeepSnapshots: 3})
	checkLatest(t, j, 50)
	// The recovery recipe: snapshot, then the records after it.
	seq, _, _, _ := j.LatestSnapshot()
	if recs := replayAll(t, j, seq+1); len(recs) != 0 {
		t.Fatalf("%d records after the snapshot at the last seq", len(recs))
	}
}

func TestSnapshotWaitsForDurability(t *testing.T) {
	j := openJournal(t, t.TempDir(), Options{})
	var last uint64
	for i := range 100 {
		last, _ = j.Append(payloadFor(uint64(i + 1)))
	}
	if err := j.WriteSnapshot(last, snapshotData(last)); err != nil {
		t.Fatal(err)
	}
	if d := j.DurableSeq(); d < last {
		t.Fatalf("snapshot at %d written while durable seq is %d", last, d)
	}
}

func TestDamagedSnapshotFallsBack(t *testing.T) {
	dir := t.TempDir()
	j := openJournal(t, dir, Options{})
	appendSync(t, j, 20)
	for _, seq := range []uint64{10, 20} {
		if err := j.WriteSnapshot(seq, snapshotData(seq)); err != nil {
			t.Fatal(err)
		}
	}
	newest := filepath.Join(dir, snapshotName(20))
	data := readFile(t, newest)
	data[len(data)-6] ^= 1
	writeFile(t, newest, data)
	checkLatest(t, j, 10)

	oldest := filepath.Join(dir, snapshotName(10))
	writeFile(t, oldest, readFile(t, oldest)[:12])
	if _, _, _, err := j.LatestSnapshot(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("LatestSnapshot with every snapshot damaged: %v, want ErrCorrupt", err)
	}
}

func TestSnapshotAheadOfJournalIsRefused(t *testing.T) {
	dir := t.TempDir()
	j := openJournal(t, dir, Options{})
	appendSync(t, j, 5)
	j.Close()
	if err := writeSnapshotFile(dir, 9, nil); err != nil {
		t.Fatal(err)
	}
	if j, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) {
		if err == nil {
			j.Close()
		}
		t.Fatalf("Open with a snapshot ahead of the journal: %v, want ErrCorrupt", err)
	}
}

func TestCompaction(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: 1 << 10, KeepSnapshots: 2, DeleteCoveredSegments: true}
	j := openJournal(t, dir, opts)
	appendSync(t, j, 100)
	if err := j.WriteSnapshot(60, snapshotData(60)); err != nil {
		t.Fatal(err)
	}
	// The oldest kept snapshot is 60: every record after it stays.
	checkCompacted(t, j, dir, 60)

	appendSync(t, j, 100)
	if err := j.WriteSnapshot(150, snapshotData(150)); err != nil {
		t.Fatal(err)
	}
	checkCompacted(t, j, dir, 60) // 60 is still kept, so nothing more goes
	if err := j.WriteSnapshot(190, snapshotData(190)); err != nil {
		t.Fatal(err)
	}
	checkCompacted(t, j, dir, 150)
	if got, want := snapshotFiles(t, dir), []uint64{150, 190}; !slices.Equal(got, want) {
		t.Fatalf("snapshots kept %v, want %v", got, want)
	}
	if _, err := collect(j, 1); err == nil {
		t.Fatal("Replay from 1 after compaction succeeded")
	}
	j.Close()

	// A reopened journal agrees, and the recovery recipe still works.
	j = openJournal(t, dir, opts)
	checkCompacted(t, j, dir, 150)
	checkRecords(t, replayAll(t, j, 191), 191, 200)
	appendSync(t, j, 1)
	if j.LastSeq() != 201 {
		t.Fatalf("LastSeq %d after compaction and reopen, want 201", j.LastSeq())
	}
}

// checkCompacted asserts that the journal starts in the segment holding
// covered+1, with nothing older kept, and that the rest replays.
func checkCompacted(t *testing.T, j *Journal, dir string, covered uint64) {
	t.Helper()
	segs := segmentFiles(t, dir)
	if segs[0] > covered+1 || (len(segs) > 1 && segs[1] <= covered+1) {
		t.Fatalf("segments %v after compaction up to %d", segs, covered)
	}
	if j.FirstSeq() != segs[0] {
		t.Fatalf("FirstSeq %d, first segment %d", j.FirstSeq(), segs[0])
	}
	checkRecords(t, replayAll(t, j, covered+1), covered+1, j.LastSeq())
}

func TestNoCompactionByDefault(t *testing.T) {
	dir := t.TempDir()
	j := openJournal(t, dir, Options{SegmentSize: 1 << 10, KeepSnapshots: 1})
	appendSync(t, j, 100)
	before := len(segmentFiles(t, dir))
	if err := j.WriteSnapshot(100, snapshotData(100)); err != nil {
		t.Fatal(err)
	}
	if after := len(segmentFiles(t, dir)); after != before {
		t.Fatalf("segments went from %d to %d without DeleteCoveredSegments", before, after)
	}
	checkRecords(t, replayAll(t, j, 1), 1, 100)
}

func TestSnapshotsWithoutSegmentsAreRefused(t *testing.T) {
	dir := t.TempDir()
	if err := writeSnapshotFile(dir, 3, nil); err != nil {
		t.Fatal(err)
	}
	if j, err := Open(dir, Options{}); err == nil {
		j.Close()
		t.Fatal("Open of a directory with a snapshot and no segments succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, segmentName(1))); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused Open created a segment")
	}
}
