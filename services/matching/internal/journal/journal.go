// Package journal is the write-ahead log of the matching engine: an
// append-only, segmented log of opaque records plus atomic snapshots, in
// one data directory.
//
// # Using it
//
// The engine appends each command before applying it, waits until the
// record is durable, then applies it to the book and acknowledges:
//
//	j, err := journal.Open(dir, journal.Options{})
//	seq, wait := j.Append(payload) // cheap; payload may be reused at once
//	if err := wait(); err != nil { ... } // durable: apply and acknowledge
//
// Append may be called again before earlier waits return: every record
// queued while the writer is busy goes into the next batch, which costs
// one write and one fsync however many records it holds (group commit).
// WaitDurable(seq) waits for every record up to seq, so a caller with many
// records in flight can Enqueue them (Append without the wait function,
// which allocates nothing) and wait once for the highest. AppendSync
// appends and waits. All methods are safe for concurrent use.
//
// On start the service restores the newest snapshot and replays what
// follows it:
//
//	seq, data, ok, err := j.LatestSnapshot() // seq 0 and !ok on a fresh journal
//	for rec, err := range j.Replay(seq + 1) { ... }
//
// WriteSnapshot(seq, data) stores the state reached after applying record
// seq. Sequence numbers start at 1 and grow by one per record, over the
// journal's whole life, across segments, reopenings and compaction.
//
// # Durability
//
//   - With SyncAlways (the default) a record is durable when its wait
//     returns nil: it has been written and fsynced, and so has every record
//     before it. It survives a process crash and a power failure.
//   - With SyncNever records are only written to the operating system
//     before waits return: they survive a process crash, not a machine
//     crash. Meant for benchmarks.
//   - A write or fsync error is final: pending and later appends fail with
//     it, and the journal must be closed and reopened. Retrying an fsync is
//     not safe, as the kernel may have dropped the dirty pages.
//   - Snapshots are written to a temporary file, fsynced, renamed into
//     place and the directory fsynced, so a snapshot file is either
//     complete or absent. WriteSnapshot first waits until record seq is
//     durable, so no snapshot ever depends on records a crash can lose.
//   - Close writes and fsyncs everything appended before it, in both
//     modes.
//
// # Recovery
//
// Open scans the last segment, the only one that can hold an unfinished
// write. A record whose length or CRC-32C does not check, or that is cut
// short by the end of the file, is damaged. Damage at the tail is a torn
// write, which was never acknowledged: Open truncates it away and appending
// continues with the next sequence number.
//
// Damage followed by an intact record that starts a later write batch is
// corruption, not a torn write: the writer issues the next batch only
// after the previous one was fsynced, so the damaged bytes had been
// durable. Open then refuses to start with an error wrapping ErrCorrupt;
// an operator must look. So it does for a record with a valid checksum but
// an unexpected sequence number, which no torn write produces.
//
// Two limits follow. Damage inside the last batch of the last segment
// cannot be told from a torn write and is truncated like one. With
// SyncNever, a machine crash can leave several unsynced batches and Open
// may report the result as corruption.
//
// Earlier segments are complete by construction (each is fsynced before
// the next is created) and Open does not read them, so that start-up costs
// one segment, not the whole history. Replay verifies every record it
// reads, and that each segment starts where the previous one ended, and
// yields an error wrapping ErrCorrupt at the first defect.
//
// # Files
//
// Segments are named after their first sequence number
// (00000000000000000001.wal) and rotate when they reach
// Options.SegmentSize; a write batch never spans two segments, so a
// segment can exceed the limit by at most one batch. Snapshots are
// snapshot-<seq>.snap. A LOCK file, locked while the journal is open,
// keeps a second process out. See segment.go and snapshot.go for the
// byte layouts.
//
// # Snapshots and compaction
//
// WriteSnapshot keeps the newest Options.KeepSnapshots snapshots (default
// 2) and deletes older ones. LatestSnapshot returns the newest snapshot
// whose checksum holds, falling back to an older one when the newest is
// damaged. With Options.DeleteCoveredSegments, segments whose records all
// precede the oldest kept snapshot are deleted after each snapshot:
// keeping the journal back to the oldest snapshot, not just the newest,
// is what makes the fallback possible. The active segment is never
// deleted. Without the option every segment is kept, for audit or
// archiving by other means.
package journal

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
)

// SyncMode selects whether the writer fsyncs each batch.
type SyncMode uint8

const (
	// SyncAlways fsyncs every batch before its waits return.
	SyncAlways SyncMode = iota
	// SyncNever only writes batches to the operating system; see the
	// package documentation for what that gives up.
	SyncNever
)

// Options configure a Journal. The zero value is the production setting.
type Options struct {
	// SegmentSize is the size in bytes at which the writer starts a new
	// segment. Zero means DefaultSegmentSize.
	SegmentSize int64
	// Sync selects whether batches are fsynced. The zero value fsyncs.
	Sync SyncMode
	// MaxRecordSize bounds the payload Append accepts. Zero means
	// DefaultMaxRecordSize. Reading does not use it, so lowering it never
	// makes records written earlier unreadable.
	MaxRecordSize int
	// MaxPendingBytes bounds the encoded records waiting for the writer;
	// Append blocks while it is exceeded. It also bounds a batch. Zero
	// means DefaultMaxPendingBytes.
	MaxPendingBytes int
	// KeepSnapshots is how many snapshots WriteSnapshot keeps. Zero means
	// 2.
	KeepSnapshots int
	// DeleteCoveredSegments deletes, after each snapshot, the segments
	// whose records all precede the oldest kept snapshot.
	DeleteCoveredSegments bool
}

// Defaults for zero Options fields.
const (
	DefaultSegmentSize     int64 = 64 << 20
	DefaultMaxRecordSize         = 16 << 20
	DefaultMaxPendingBytes       = 4 << 20
	defaultKeepSnapshots         = 2
)

func (o Options) withDefaults() Options {
	if o.SegmentSize <= 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.MaxRecordSize <= 0 {
		o.MaxRecordSize = DefaultMaxRecordSize
	}
	o.MaxRecordSize = min(o.MaxRecordSize, maxPayloadLen)
	if o.MaxPendingBytes <= 0 {
		o.MaxPendingBytes = DefaultMaxPendingBytes
	}
	if o.KeepSnapshots <= 0 {
		o.KeepSnapshots = defaultKeepSnapshots
	}
	return o
}

var (
	// ErrClosed is returned by operations on a closed journal.
	ErrClosed = errors.New("journal: closed")
	// ErrCorrupt wraps every report of damage that a torn write cannot
	// explain.
	ErrCorrupt = errors.New("journal: corrupt")
)

// Record is one journal entry as yielded by Replay.
type Record struct {
	Seq uint64
	// Payload is only valid until the iteration continues; copy it to
	// keep it.
	Payload []byte
}

// Journal is an open journal directory. Create it with Open.
type Journal struct {
	dir  string
	opts Options
	lock *os.File // holds the directory lock while open

	mu        sync.Mutex // guards the fields up to durable
	spaceFree *sync.Cond // signalled when the writer takes pending
	pending   []byte     // framed records not yet taken by the writer
	nextSeq   uint64     // seq of the next Append
	closed    bool
	failure   error         // first write or fsync error; final
	flushed   chan struct{} // closed, and replaced, when durable advances or failure is set
	segments  []uint64      // first seq of each segment, ascending; the last is active

	durable atomic.Uint64 // highest seq written (and fsynced with SyncAlways); stored under mu

	wake     chan struct{}  // nudges the writer; capacity 1
	done     chan struct{}  // closed when the writer exits
	active   *activeSegment // owned by the writer goroutine after Open
	closeErr error          // the writer's final result, read after done

	snapshots sync.Mutex // serialises WriteSnapshot
	closeOnce sync.Once
}

// Open opens the journal in dir, creating the directory and a first
// segment if needed, recovers the tail of the last segment (see the
// package documentation) and starts the writer.
func Open(dir string, opts Options) (*Journal, error) {
	opts = opts.withDefaults()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("journal: create directory: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	j, err := open(dir, opts, lock)
	if err != nil {
		unlockDir(lock)
		return nil, err
	}
	return j, nil
}

func open(dir string, opts Options, lock *os.File) (*Journal, error) {
	listing, err := listDir(dir)
	if err != nil {
		return nil, err
	}
	if err := removeTemporaries(dir, listing.temporaries); err != nil {
		return nil, err
	}
	if len(listing.segments) == 0 && len(listing.snapshots) > 0 {
		return nil, fmt.Errorf("%w: %s has snapshots but no segments", ErrCorrupt, dir)
	}
	if len(listing.segments) == 0 {
		f, err := createSegment(dir, 1)
		if err != nil {
			return nil, err
		}
		f.Close()
		listing.segments = []uint64{1}
	}
	active, err := recoverLastSegment(dir, listing.segments[len(listing.segments)-1])
	if err != nil {
		return nil, err
	}
	lastSeq := active.nextSeq - 1
	if n := len(listing.snapshots); n > 0 && listing.snapshots[n-1] > lastSeq {
		active.file.Close()
		return nil, fmt.Errorf("%w: snapshot at seq %d is ahead of the journal, which ends at %d",
			ErrCorrupt, listing.snapshots[n-1], lastSeq)
	}
	j := &Journal{
		dir:      dir,
		opts:     opts,
		lock:     lock,
		nextSeq:  active.nextSeq,
		flushed:  make(chan struct{}),
		segments: listing.segments,
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		active:   active,
	}
	j.spaceFree = sync.NewCond(&j.mu)
	j.durable.Store(lastSeq)
	go j.runWriter()
	return j, nil
}

// Append queues payload as the next record and returns its sequence number
// and a function that waits until the record is durable. The payload is
// copied, so the caller may reuse it at once. Append blocks only while
// Options.MaxPendingBytes of records wait for the writer. On failure seq is
// 0 and wait returns the error.
func (j *Journal) Append(payload []byte) (seq uint64, wait func() error) {
	s, err := j.Enqueue(payload)
	if err != nil {
		return 0, func() error { return err }
	}
	return s, func() error { return j.WaitDurable(s) }
}

// Enqueue is Append without the wait function, and so without an
// allocation: a caller with many records in flight enqueues them and calls
// WaitDurable once for the highest seq.
func (j *Journal) Enqueue(payload []byte) (seq uint64, err error) {
	if len(payload) > j.opts.MaxRecordSize {
		return 0, fmt.Errorf("journal: record of %d bytes exceeds the limit of %d", len(payload), j.opts.MaxRecordSize)
	}
	j.mu.Lock()
	for len(j.pending) >= j.opts.MaxPendingBytes && j.usable() == nil {
		j.spaceFree.Wait()
	}
	if err := j.usable(); err != nil {
		j.mu.Unlock()
		return 0, err
	}
	seq = j.nextSeq
	j.nextSeq++
	j.pending = appendFrame(j.pending, seq, payload)
	j.mu.Unlock()
	select {
	case j.wake <- struct{}{}:
	default: // the writer has a wake-up queued already
	}
	return seq, nil
}

// AppendSync appends payload and waits until it is durable.
func (j *Journal) AppendSync(payload []byte) (uint64, error) {
	seq, err := j.Enqueue(payload)
	if err != nil {
		return 0, err
	}
	return seq, j.WaitDurable(seq)
}

// usable reports why the journal takes no more records; j.mu must be held.
func (j *Journal) usable() error {
	if j.failure != nil {
		return j.failure
	}
	if j.closed {
		return ErrClosed
	}
	return nil
}

// WaitDurable blocks until every record up to seq is durable, or returns
// the error that stops the journal from making it so.
func (j *Journal) WaitDurable(seq uint64) error {
	for {
		if j.durable.Load() >= seq {
			return nil
		}
		j.mu.Lock()
		if j.durable.Load() >= seq {
			j.mu.Unlock()
			return nil
		}
		if j.failure != nil {
			err := j.failure
			j.mu.Unlock()
			return err
		}
		if seq >= j.nextSeq {
			j.mu.Unlock()
			return fmt.Errorf("journal: wait for seq %d, which was never appended", seq)
		}
		flushed := j.flushed
		j.mu.Unlock()
		<-flushed
	}
}

// LastSeq returns the sequence number of the last record appended, durable
// or not; 0 when the journal is empty.
func (j *Journal) LastSeq() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.nextSeq - 1
}

// DurableSeq returns the highest sequence number known to be durable.
func (j *Journal) DurableSeq() uint64 { return j.durable.Load() }

// FirstSeq returns the sequence number of the oldest record still kept;
// records before it were deleted by compaction.
func (j *Journal) FirstSeq() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.segments[0]
}

// Close writes and fsyncs every record appended before it, stops the
// writer and releases the directory. Appends after Close fail with
// ErrClosed. Close returns the writer's failure, if any; calling it again
// returns ErrClosed.
func (j *Journal) Close() error {
	err := ErrClosed
	j.closeOnce.Do(func() {
		j.mu.Lock()
		j.closed = true
		j.spaceFree.Broadcast()
		j.mu.Unlock()
		select {
		case j.wake <- struct{}{}:
		default:
		}
		<-j.done
		err = j.closeErr
		unlockDir(j.lock)
	})
	return err
}
