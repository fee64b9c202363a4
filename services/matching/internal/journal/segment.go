package journal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// A segment is a bare sequence of records, without a file header: the file
// name carries the first sequence number, and every record carries its
// own. Record layout, integers little endian:
//
//	offset  size  field
//	0       4     CRC-32C (Castagnoli) of bytes 4 .. 16+n
//	4       4     payload length n in the low 31 bits; the top bit marks
//	              the first record of a write batch
//	8       8     sequence number
//	16      n     payload
//
// The checksum covers the length word and the sequence number, so a
// damaged length or number is caught like damaged payload. The batch mark
// lets recovery tell a torn tail from corruption: see findLaterBatch.

const (
	frameHeaderSize = 16
	batchStartBit   = 1 << 31
	maxPayloadLen   = batchStartBit - 1
	segmentSuffix   = ".wal"
	segmentNameLen  = 20 + len(segmentSuffix)
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func segmentName(firstSeq uint64) string { return fmt.Sprintf("%020d%s", firstSeq, segmentSuffix) }

// parseSegmentName returns the first sequence number encoded in a segment
// file name.
func parseSegmentName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || len(name) != segmentNameLen {
		return 0, false
	}
	seq, err := strconv.ParseUint(digits, 10, 64)
	return seq, err == nil && seq > 0
}

// appendFrame appends a record with its checksum and batch mark left
// blank: the writer fills them in sealBatch, off the caller's goroutine,
// once it knows where the batch starts.
func appendFrame(dst []byte, seq uint64, payload []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, 0)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
	dst = binary.LittleEndian.AppendUint64(dst, seq)
	return append(dst, payload...)
}

// sealBatch marks the first record of a batch of frames built by
// appendFrame and computes every checksum.
func sealBatch(batch []byte) {
	for off := 0; off < len(batch); {
		header := batch[off : off+frameHeaderSize]
		n := int(binary.LittleEndian.Uint32(header[4:]) &^ batchStartBit)
		if off == 0 {
			binary.LittleEndian.PutUint32(header[4:], uint32(n)|batchStartBit)
		}
		end := off + frameHeaderSize + n
		binary.LittleEndian.PutUint32(header, crc32.Checksum(batch[off+4:end], castagnoli))
		off = end
	}
}

// frame is a record read back from a segment.
type frame struct {
	seq        uint64
	batchStart bool
	payload    []byte // owned by the frameReader, valid until next
	offset     int64
}

// damageError reports bytes that do not form a valid record. Whether that
// is a torn write or corruption depends on where it is; see
// recoverLastSegment.
type damageError struct {
	offset int64
	reason string
}

func (e *damageError) Error() string {
	return fmt.Sprintf("damaged record at offset %d: %s", e.offset, e.reason)
}

// frameReader reads records from the first size bytes of a segment. It
// checks every length against the bytes left before trusting it, so
// damaged input never makes it allocate more than the file holds.
type frameReader struct {
	r       *bufio.Reader
	offset  int64 // of the next record
	size    int64
	header  [frameHeaderSize]byte
	payload []byte // reused for every record
}

// newFrameReader reads f up to size, reusing payload's memory.
func newFrameReader(f *os.File, size int64, payload []byte) *frameReader {
	return &frameReader{
		r:       bufio.NewReaderSize(io.LimitReader(f, size), 64<<10),
		size:    size,
		payload: payload,
	}
}

// next returns the next record, io.EOF at a clean end, a *damageError, or
// an I/O error.
func (fr *frameReader) next() (frame, error) {
	start := fr.offset
	if start == fr.size {
		return frame{}, io.EOF
	}
	if fr.size-start < frameHeaderSize {
		return frame{}, &damageError{start, "record header cut short by the end of the file"}
	}
	if _, err := io.ReadFull(fr.r, fr.header[:]); err != nil {
		return frame{}, fmt.Errorf("read record header at offset %d: %w", start, err)
	}
	word := binary.LittleEndian.Uint32(fr.header[4:])
	n := int64(word &^ batchStartBit)
	if n > fr.size-start-frameHeaderSize {
		return frame{}, &damageError{start, fmt.Sprintf("length %d runs past the end of the file", n)}
	}
	if cap(fr.payload) < int(n) {
		fr.payload = make([]byte, n)
	}
	payload := fr.payload[:n]
	if _, err := io.ReadFull(fr.r, payload); err != nil {
		return frame{}, fmt.Errorf("read record at offset %d: %w", start, err)
	}
	sum := crc32.Update(crc32.Checksum(fr.header[4:], castagnoli), castagnoli, payload)
	if sum != binary.LittleEndian.Uint32(fr.header[:]) {
		return frame{}, &damageError{start, "checksum mismatch"}
	}
	fr.offset = start + frameHeaderSize + n
	return frame{
		seq:        binary.LittleEndian.Uint64(fr.header[8:]),
		batchStart: word&batchStartBit != 0,
		payload:    payload,
		offset:     start,
	}, nil
}

// checkSequence reports a record that has a valid checksum but is out of
// place: a torn write cannot produce one, so it is corruption.
func checkSequence(path string, f frame, want uint64) error {
	if f.seq != want {
		return fmt.Errorf("%w: %s offset %d: record seq %d, expected %d", ErrCorrupt, path, f.offset, f.seq, want)
	}
	if f.offset == 0 && !f.batchStart {
		return fmt.Errorf("%w: %s: first record is not the start of a write batch", ErrCorrupt, path)
	}
	return nil
}

// activeSegment is the segment the writer appends to.
type activeSegment struct {
	file     *os.File
	firstSeq uint64
	size     int64
	nextSeq  uint64 // seq of the next record; used by Open only
}

// recoverLastSegment validates the last segment, truncates a torn tail and
// returns it open for appending.
//
// A damaged record is a torn write when nothing after it starts a later
// batch: the writer only starts a batch after fsyncing the previous one,
// so a later batch on disk means the damaged bytes had been made durable,
// which is corruption.
func recoverLastSegment(dir string, firstSeq uint64) (*activeSegment, error) {
	path := filepath.Join(dir, segmentName(firstSeq))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("journal: open last segment: %w", err)
	}
	seg, err := recoverOpenSegment(f, path, firstSeq)
	if err != nil {
		f.Close()
		return nil, err
	}
	return seg, nil
}

func recoverOpenSegment(f *os.File, path string, firstSeq uint64) (*activeSegment, error) {
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	size := info.Size()
	fr := newFrameReader(f, size, nil)
	next := firstSeq
	for {
		rec, err := fr.next()
		if err == io.EOF {
			break
		}
		var damage *damageError
		if errors.As(err, &damage) {
			if err := truncateTornTail(f, path, damage, next-1, size); err != nil {
				return nil, err
			}
			size = damage.offset
			break
		}
		if err != nil {
			return nil, fmt.Errorf("journal: %s: %w", path, err)
		}
		if err := checkSequence(path, rec, next); err != nil {
			return nil, err
		}
		next++
	}
	if _, err := f.Seek(size, io.SeekStart); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	return &activeSegment{file: f, firstSeq: firstSeq, size: size, nextSeq: next}, nil
}

// truncateTornTail cuts the segment at the damaged record, unless the
// damage is followed by a later batch (corruption).
func truncateTornTail(f *os.File, path string, damage *damageError, lastGoodSeq uint64, size int64) error {
	rest := make([]byte, size-damage.offset)
	if _, err := f.ReadAt(rest, damage.offset); err != nil {
		return fmt.Errorf("journal: read tail of %s: %w", path, err)
	}
	if at, ok := findLaterBatch(rest[1:], lastGoodSeq); ok {
		return fmt.Errorf("%w: %s: %v, followed by an intact write batch at offset %d",
			ErrCorrupt, path, damage, damage.offset+1+int64(at))
	}
	if err := f.Truncate(damage.offset); err != nil {
		return fmt.Errorf("journal: truncate torn tail of %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("journal: sync %s: %w", path, err)
	}
	return nil
}

// findLaterBatch looks at every offset of data for the first record of a
// write batch with a valid checksum and a sequence number above
// lastGoodSeq, and returns its offset.
func findLaterBatch(data []byte, lastGoodSeq uint64) (int, bool) {
	for at := 0; at+frameHeaderSize <= len(data); at++ {
		header := data[at : at+frameHeaderSize]
		word := binary.LittleEndian.Uint32(header[4:])
		n := int(word &^ batchStartBit)
		if word&batchStartBit == 0 || n > len(data)-at-frameHeaderSize {
			continue
		}
		if binary.LittleEndian.Uint64(header[8:]) <= lastGoodSeq {
			continue
		}
		if crc32.Checksum(data[at+4:at+frameHeaderSize+n], castagnoli) == binary.LittleEndian.Uint32(header) {
			return at, true
		}
	}
	return 0, false
}

// createSegment creates an empty segment and makes its directory entry
// durable, so a crash cannot lose a file that records were written to.
func createSegment(dir string, firstSeq uint64) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, segmentName(firstSeq)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("journal: create segment: %w", err)
	}
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
