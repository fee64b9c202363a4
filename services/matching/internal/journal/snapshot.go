package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Snapshot file layout, integers little endian:
//
//	offset  size  field
//	0       4     "BJSN"
//	4       8     seq of the last record applied to the state
//	12      8     data length n
//	20      n     data
//	20+n    4     CRC-32C of bytes 0 .. 20+n
//
// The name, snapshot-<seq>.snap, repeats the seq so that listing the
// directory is enough to choose a snapshot.

const (
	snapshotMagic      = "BJSN"
	snapshotHeaderSize = 20
	snapshotPrefix     = "snapshot-"
	snapshotSuffix     = ".snap"
)

// errDamagedSnapshot marks a snapshot file that fails its checks, as
// opposed to one that could not be read.
var errDamagedSnapshot = errors.New("damaged snapshot")

func snapshotName(seq uint64) string {
	return fmt.Sprintf("%s%020d%s", snapshotPrefix, seq, snapshotSuffix)
}

func parseSnapshotName(name string) (uint64, bool) {
	digits, ok := strings.CutPrefix(name, snapshotPrefix)
	if !ok {
		return 0, false
	}
	digits, ok = strings.CutSuffix(digits, snapshotSuffix)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	seq, err := strconv.ParseUint(digits, 10, 64)
	return seq, err == nil
}

// WriteSnapshot stores data as the state reached after applying record
// seq (0 for the state before any record). It first waits until record
// seq is durable, writes the snapshot atomically, deletes snapshots beyond
// Options.KeepSnapshots and, with Options.DeleteCoveredSegments, the
// segments the oldest kept snapshot covers. A snapshot for a seq that
// already has one replaces it.
func (j *Journal) WriteSnapshot(seq uint64, data []byte) error {
	j.mu.Lock()
	err := j.usable()
	last := j.nextSeq - 1
	j.mu.Unlock()
	if err != nil {
		return err
	}
	if seq > last {
		return fmt.Errorf("journal: snapshot at seq %d, but the last record is %d", seq, last)
	}
	if err := j.WaitDurable(seq); err != nil {
		return err
	}

	j.snapshots.Lock()
	defer j.snapshots.Unlock()
	if err := writeSnapshotFile(j.dir, seq, data); err != nil {
		return err
	}
	return j.pruneSnapshots()
}

func writeSnapshotFile(dir string, seq uint64, data []byte) error {
	final := filepath.Join(dir, snapshotName(seq))
	temporary := final + temporarySuffix
	f, err := os.OpenFile(temporary, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("journal: create snapshot: %w", err)
	}
	header := make([]byte, 0, snapshotHeaderSize)
	header = append(header, snapshotMagic...)
	header = binary.LittleEndian.AppendUint64(header, seq)
	header = binary.LittleEndian.AppendUint64(header, uint64(len(data)))
	sum := crc32.Update(crc32.Checksum(header, castagnoli), castagnoli, data)
	err = writeAll(f, header, data, binary.LittleEndian.AppendUint32(nil, sum))
	if err == nil {
		err = f.Sync()
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(temporary, final)
	}
	if err != nil {
		os.Remove(temporary)
		return fmt.Errorf("journal: write snapshot %d: %w", seq, err)
	}
	return syncDir(dir)
}

func writeAll(f *os.File, parts ...[]byte) error {
	for _, p := range parts {
		if _, err := f.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// pruneSnapshots deletes all but the newest KeepSnapshots snapshots, then
// compacts if configured.
func (j *Journal) pruneSnapshots() error {
	listing, err := listDir(j.dir)
	if err != nil {
		return err
	}
	seqs := listing.snapshots
	drop := max(len(seqs)-j.opts.KeepSnapshots, 0)
	for _, seq := range seqs[:drop] {
		if err := os.Remove(filepath.Join(j.dir, snapshotName(seq))); err != nil {
			return fmt.Errorf("journal: delete old snapshot: %w", err)
		}
	}
	removed := drop > 0
	if j.opts.DeleteCoveredSegments && len(seqs) > drop {
		n, err := j.deleteCoveredSegments(seqs[drop])
		if err != nil {
			return err
		}
		removed = removed || n > 0
	}
	if removed {
		return syncDir(j.dir)
	}
	return nil
}

// deleteCoveredSegments deletes the segments whose records all have
// seq <= covered, never the active one, and returns how many it deleted.
func (j *Journal) deleteCoveredSegments(covered uint64) (int, error) {
	j.mu.Lock()
	// Segment i holds seqs segments[i] .. segments[i+1]-1.
	n := 0
	for n+1 < len(j.segments) && j.segments[n+1]-1 <= covered {
		n++
	}
	doomed := slices.Clone(j.segments[:n])
	j.segments = slices.Delete(j.segments, 0, n)
	j.mu.Unlock()
	for _, seq := range doomed {
		if err := os.Remove(filepath.Join(j.dir, segmentName(seq))); err != nil {
			return 0, fmt.Errorf("journal: delete covered segment: %w", err)
		}
	}
	return n, nil
}

// LatestSnapshot returns the newest intact snapshot: its seq and data, or
// ok false when there is none. A damaged newest snapshot is skipped for
// the one before it, which is safe because the journal is kept back to the
// oldest snapshot; if every snapshot is damaged it returns an error
// wrapping ErrCorrupt.
func (j *Journal) LatestSnapshot() (seq uint64, data []byte, ok bool, err error) {
	listing, err := listDir(j.dir)
	if err != nil {
		return 0, nil, false, err
	}
	var damaged []error
	for _, seq := range slices.Backward(listing.snapshots) {
		data, err := readSnapshotFile(j.dir, seq)
		if errors.Is(err, errDamagedSnapshot) {
			damaged = append(damaged, err)
			continue
		}
		if err != nil {
			return 0, nil, false, err
		}
		return seq, data, true, nil
	}
	if len(damaged) > 0 {
		return 0, nil, false, fmt.Errorf("%w: every snapshot is damaged: %w", ErrCorrupt, errors.Join(damaged...))
	}
	return 0, nil, false, nil
}

func readSnapshotFile(dir string, seq uint64) ([]byte, error) {
	name := snapshotName(seq)
	raw, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return nil, fmt.Errorf("journal: read snapshot: %w", err)
	}
	damaged := func(reason string) error { return fmt.Errorf("journal: %s: %w: %s", name, errDamagedSnapshot, reason) }
	if len(raw) < snapshotHeaderSize+4 || string(raw[:4]) != snapshotMagic {
		return nil, damaged("bad header")
	}
	if binary.LittleEndian.Uint64(raw[4:]) != seq {
		return nil, damaged("seq does not match the file name")
	}
	if binary.LittleEndian.Uint64(raw[12:]) != uint64(len(raw)-snapshotHeaderSize-4) {
		return nil, damaged("length does not match the file size")
	}
	body, sum := raw[:len(raw)-4], binary.LittleEndian.Uint32(raw[len(raw)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, damaged("checksum mismatch")
	}
	return body[snapshotHeaderSize:], nil
}
