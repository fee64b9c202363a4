package journal

import (
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"slices"
)

// Replay yields, in order, the durable records with seq >= fromSeq (0 is
// read as 1). It stops at the last record durable when iteration starts,
// so it may run while appends continue. It verifies every record it reads,
// including those before fromSeq in the first segment it opens, and stops
// with an error wrapping ErrCorrupt at the first defect. Asking for
// records that compaction deleted is an error; asking beyond the end
// yields nothing.
//
// Each Record's payload is only valid until the iteration continues.
// Replay reads segment files directly, so a compaction running at the
// same time can make it fail.
func (j *Journal) Replay(fromSeq uint64) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		// Read the limit before the segment list: the writer adds a
		// segment before it writes records into it, so the list then
		// covers every record up to the limit.
		limit := j.durable.Load()
		j.mu.Lock()
		segments := slices.Clone(j.segments)
		j.mu.Unlock()

		fromSeq = max(fromSeq, 1)
		if fromSeq < segments[0] {
			yield(Record{}, fmt.Errorf("journal: replay from seq %d: records before %d were deleted by compaction", fromSeq, segments[0]))
			return
		}
		if fromSeq > limit {
			return
		}
		// Start in the last segment that begins at or before fromSeq.
		first, _ := slices.BinarySearch(segments, fromSeq+1)
		r := replayer{dir: j.dir, fromSeq: fromSeq, limit: limit, yield: yield}
		r.next = segments[first-1]
		for _, seg := range segments[first-1:] {
			if seg != r.next {
				yield(Record{}, fmt.Errorf("%w: segment %s starts at seq %d, but the previous one ends at %d",
					ErrCorrupt, segmentName(seg), seg, r.next-1))
				return
			}
			if !r.segment(seg) || r.next > limit {
				return
			}
		}
		yield(Record{}, fmt.Errorf("%w: the journal ends at seq %d, before durable seq %d", ErrCorrupt, r.next-1, limit))
	}
}

// replayer carries a Replay across segments.
type replayer struct {
	dir     string
	fromSeq uint64
	limit   uint64
	yield   func(Record, error) bool
	next    uint64 // seq the next record must have
	payload []byte // read buffer, reused across segments
}

// segment replays one segment and reports whether to go on.
func (r *replayer) segment(firstSeq uint64) bool {
	path := filepath.Join(r.dir, segmentName(firstSeq))
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return r.fail(fmt.Errorf("journal: %s was deleted during replay, probably by compaction", path))
	}
	if err != nil {
		return r.fail(fmt.Errorf("journal: %w", err))
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return r.fail(fmt.Errorf("journal: %w", err))
	}
	fr := newFrameReader(f, info.Size(), r.payload)
	defer func() { r.payload = fr.payload }()
	for r.next <= r.limit {
		rec, err := fr.next()
		if err == io.EOF {
			return true
		}
		var damage *damageError
		if errors.As(err, &damage) {
			return r.fail(fmt.Errorf("%w: %s: %v", ErrCorrupt, path, damage))
		}
		if err != nil {
			return r.fail(fmt.Errorf("journal: %s: %w", path, err))
		}
		if err := checkSequence(path, rec, r.next); err != nil {
			return r.fail(err)
		}
		r.next++
		if rec.seq >= r.fromSeq && !r.yield(Record{Seq: rec.seq, Payload: rec.payload}, nil) {
			return false
		}
	}
	return true
}

// fail yields err as the last element of the replay.
func (r *replayer) fail(err error) bool {
	r.yield(Record{}, err)
	return false
}
