package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"testing"
)

func TestRoundTripAcrossRotation(t *testing.T) {
	dir := t.TempDir()
	j := openJournal(t, dir, Options{SegmentSize: 1 << 10})
	appendSync(t, j, 300)
	if got := len(segmentFiles(t, dir)); got < 10 {
		t.Fatalf("%d segments after 300 records with 1 KiB segments; rotation is not happening", got)
	}
	checkRecords(t, replayAll(t, j, 0), 1, 300)
	checkRecords(t, replayAll(t, j, 1), 1, 300)
	checkRecords(t, replayAll(t, j, 123), 123, 300)
	checkRecords(t, replayAll(t, j, 300), 300, 300)
	if recs := replayAll(t, j, 301); len(recs) != 0 {
		t.Fatalf("Replay past the end yielded %d records", len(recs))
	}
	// Every segment is named after its first record and stays near the
	// limit: a batch of one record never pushes it far past.
	for _, seg := range segmentFiles(t, dir) {
		data := readFile(t, dir+"/"+segmentName(seg))
		if len(data) > 1<<10+frameHeaderSize+64 {
			t.Errorf("segment %d holds %d bytes, limit 1 KiB", seg, len(data))
		}
	}
}

func TestReopenContinuesSequence(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentSize: 2 << 10}
	for round := range 4 {
		j := openJournal(t, dir, opts)
		if got, want := j.LastSeq(), uint64(round*50); got != want {
			t.Fatalf("round %d: LastSeq %d after reopen, want %d", round, got, want)
		}
		appendSync(t, j, 50)
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
	}
	j := openJournal(t, dir, opts)
	checkRecords(t, replayAll(t, j, 1), 1, 200)
}

func TestEmptyJournal(t *testing.T) {
	j := openJournal(t, t.TempDir(), Options{})
	if j.LastSeq() != 0 || j.DurableSeq() != 0 || j.FirstSeq() != 1 {
		t.Fatalf("fresh journal: last %d durable %d first %d", j.LastSeq(), j.DurableSeq(), j.FirstSeq())
	}
	if recs := replayAll(t, j, 1); len(recs) != 0 {
		t.Fatalf("fresh journal replayed %d records", len(recs))
	}
	seq, data, ok, err := j.LatestSnapshot()
	if err != nil || ok || seq != 0 || data != nil {
		t.Fatalf("LatestSnapshot on a fresh journal = %d, %q, %v, %v", seq, data, ok, err)
	}
}

func TestEmptyPayloadAndPayloadReuse(t *testing.T) {
	j := openJournal(t, t.TempDir(), Options{})
	buf := []byte("first")
	_, wait := j.Append(buf)
	copy(buf, "XXXXX") // Append copied it
	if _, err := j.AppendSync(nil); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	recs := replayAll(t, j, 1)
	if len(recs) != 2 || string(recs[0].Payload) != "first" || len(recs[1].Payload) != 0 {
		t.Fatalf("replayed %+v", recs)
	}
}

func TestGroupCommit(t *testing.T) {
	dir := t.TempDir()
	j := openJournal(t, dir, Options{SegmentSize: 64 << 10})
	const writers, perWriter = 16, 100
	var mu sync.Mutex
	written := map[uint64][]byte{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				payload := []byte{byte(w), byte(i), byte(i >> 8)}
				seq, wait := j.Append(payload)
				if err := wait(); err != nil {
					t.Error(err)
					return
				}
				if d := j.DurableSeq(); d < seq {
					t.Errorf("wait for %d returned with durable seq %d", seq, d)
				}
				mu.Lock()
				if _, dup := written[seq]; dup {
					t.Errorf("seq %d handed out twice", seq)
				}
				written[seq] = payload
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	j = openJournal(t, dir, Options{})
	recs := replayAll(t, j, 1)
	if len(recs) != writers*perWriter {
		t.Fatalf("replayed %d records, want %d", len(recs), writers*perWriter)
	}
	for i, rec := range recs {
		if rec.Seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d", i, rec.Seq)
		}
		if !bytes.Equal(rec.Payload, written[rec.Seq]) {
			t.Fatalf("seq %d: payload %v, appended %v", rec.Seq, rec.Payload, written[rec.Seq])
		}
	}
	if batches := countBatches(t, dir); batches >= len(recs) {
		t.Errorf("%d records took %d batches: nothing was grouped", len(recs), batches)
	} else {
		t.Logf("%d records in %d batches", len(recs), batches)
	}
}

// countBatches counts write batches in all segments of dir.
func countBatches(t *testing.T, dir string) int {
	n := 0
	for _, seg := range segmentFiles(t, dir) {
		data := readFile(t, dir+"/"+segmentName(seg))
		for off := 0; off < len(data); {
			word := binary.LittleEndian.Uint32(data[off+4:])
			if word&batchStartBit != 0 {
				n++
			}
			off += frameHeaderSize + int(word&^batchStartBit)
		}
	}
	return n
}

func TestPipelinedAppendsWaitOnce(t *testing.T) {
	j := openJournal(t, t.TempDir(), Options{MaxPendingBytes: 1 << 10})
	var last uint64
	for i := range 2000 {
		seq, _ := j.Append(payloadFor(uint64(i + 1)))
		last = seq
	}
	if err := j.WaitDurable(last); err != nil {
		t.Fatal(err)
	}
	checkRecords(t, replayAll(t, j, 1), 1, 2000)
}

func TestAppendErrors(t *testing.T) {
	j := openJournal(t, t.TempDir(), Options{MaxRecordSize: 100})
	if seq, wait := j.Append(make([]byte, 101)); seq != 0 || wait() == nil {
		t.Fatal("oversized record accepted")
	}
	if err := j.WaitDurable(5); err == nil {
		t.Fatal("WaitDurable for a seq never appended returned nil")
	}
	appendSync(t, j, 3)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := j.AppendSync([]byte("late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("AppendSync after Close: %v", err)
	}
	if err := j.WaitDurable(3); err != nil {
		t.Fatalf("WaitDurable of a record written before Close: %v", err)
	}
	if err := j.WriteSnapshot(3, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("WriteSnapshot after Close: %v", err)
	}
}

func TestCloseFlushesWithoutSync(t *testing.T) {
	dir := t.TempDir()
	j := openJournal(t, dir, Options{Sync: SyncNever})
	for i := range 500 {
		j.Append(payloadFor(uint64(i + 1)))
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = openJournal(t, dir, Options{})
	checkRecords(t, replayAll(t, j, 1), 1, 500)
}

func TestSecondOpenIsRefused(t *testing.T) {
	dir := t.TempDir()
	openJournal(t, dir, Options{})
	if j, err := Open(dir, Options{}); err == nil {
		j.Close()
		t.Fatal("a second Open of the same directory succeeded")
	}
}

func TestReplayStopsWhenAsked(t *testing.T) {
	j := openJournal(t, t.TempDir(), Options{SegmentSize: 512})
	appendSync(t, j, 50)
	var seen []uint64
	for rec, err := range j.Replay(10) {
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, rec.Seq)
		if rec.Seq == 20 {
			break
		}
	}
	if want := []uint64{10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}; !slices.Equal(seen, want) {
		t.Fatalf("saw %v", seen)
	}
}

func TestReplayDuringAppends(t *testing.T) {
	j := openJournal(t, t.TempDir(), Options{SegmentSize: 4 << 10})
	appendSync(t, j, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 1000 {
			j.Append(payloadFor(uint64(101 + i)))
		}
	}()
	for range 5 {
		recs := replayAll(t, j, 1)
		checkRecords(t, recs, 1, uint64(len(recs)))
	}
	<-done
}

func TestEnqueueDoesNotAllocate(t *testing.T) {
	j := openJournal(t, t.TempDir(), Options{Sync: SyncNever})
	payload := make([]byte, 64)
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := j.Enqueue(payload); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("Enqueue: %v allocations per call", n)
	}
}

// TestWriteFailureIsFinal makes the writer's next write fail: the records
// durable before stay so, later ones fail, and a reopened journal has
// exactly the durable ones.
func TestWriteFailureIsFinal(t *testing.T) {
	dir := t.TempDir()
	j := openJournal(t, dir, Options{})
	appendSync(t, j, 5)
	j.active.file.Close() // the writer is idle: its next write fails

	if _, err := j.AppendSync([]byte("lost")); err == nil {
		t.Fatal("AppendSync succeeded after the segment was closed")
	}
	if _, err := j.AppendSync([]byte("refused")); err == nil {
		t.Fatal("AppendSync succeeded after a write failure")
	}
	if err := j.WaitDurable(5); err != nil {
		t.Fatalf("WaitDurable of a record durable before the failure: %v", err)
	}
	if err := j.Close(); err == nil {
		t.Fatal("Close did not report the write failure")
	}
	j = openJournal(t, dir, Options{})
	checkRecords(t, replayAll(t, j, 1), 1, 5)
}
