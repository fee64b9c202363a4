package journal

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// openJournal opens dir and closes the journal when the test ends, unless
// the test closed it already.
func openJournal(t testing.TB, dir string, opts Options) *Journal {
	t.Helper()
	j, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

// payloadFor returns a payload that differs per seq in content and length,
// so that a record swapped, shifted or cut short shows up.
func payloadFor(seq uint64) []byte {
	return fmt.Appendf(nil, "record %d %s", seq, bytes.Repeat([]byte{byte(seq)}, int(seq%37)))
}

// appendSync appends payloadFor(seq) for the next n seqs, one batch each.
func appendSync(t testing.TB, j *Journal, n int) {
	t.Helper()
	for range n {
		want := j.LastSeq() + 1
		seq, err := j.AppendSync(payloadFor(want))
		if err != nil {
			t.Fatalf("AppendSync: %v", err)
		}
		if seq != want {
			t.Fatalf("AppendSync returned seq %d, want %d", seq, want)
		}
	}
}

// replayAll collects Replay(from), copying payloads, and fails the test on
// an error.
func replayAll(t testing.TB, j *Journal, from uint64) []Record {
	t.Helper()
	recs, err := collect(j, from)
	if err != nil {
		t.Fatalf("Replay(%d): %v", from, err)
	}
	return recs
}

func collect(j *Journal, from uint64) ([]Record, error) {
	var recs []Record
	for rec, err := range j.Replay(from) {
		if err != nil {
			return recs, err
		}
		recs = append(recs, Record{Seq: rec.Seq, Payload: slices.Clone(rec.Payload)})
	}
	return recs, nil
}

// checkRecords asserts that recs are exactly from..to with the payloads of
// payloadFor.
func checkRecords(t testing.TB, recs []Record, from, to uint64) {
	t.Helper()
	if want := int(to - from + 1); len(recs) != want {
		t.Fatalf("got %d records, want %d (seqs %d..%d)", len(recs), want, from, to)
	}
	for i, rec := range recs {
		seq := from + uint64(i)
		if rec.Seq != seq {
			t.Fatalf("record %d has seq %d, want %d", i, rec.Seq, seq)
		}
		if !bytes.Equal(rec.Payload, payloadFor(seq)) {
			t.Fatalf("record %d: payload %q, want %q", seq, rec.Payload, payloadFor(seq))
		}
	}
}

// segmentFiles lists the first seqs of the segments in dir.
func segmentFiles(t testing.TB, dir string) []uint64 {
	t.Helper()
	l, err := listDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return l.segments
}

func lastSegmentPath(t testing.TB, dir string) string {
	t.Helper()
	segs := segmentFiles(t, dir)
	return filepath.Join(dir, segmentName(segs[len(segs)-1]))
}

// buildBatches returns segment bytes holding the given batches of
// payloadFor records, numbered from firstSeq, as the writer would write
// them.
func buildBatches(firstSeq uint64, batchSizes ...int) []byte {
	var out []byte
	seq := firstSeq
	for _, n := range batchSizes {
		var batch []byte
		for range n {
			batch = appendFrame(batch, seq, payloadFor(seq))
			seq++
		}
		sealBatch(batch)
		out = append(out, batch...)
	}
	return out
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
