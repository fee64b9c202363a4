package journal

import (
	"encoding/binary"
	"fmt"
)

// runWriter is the background writer. It takes every record queued since
// its last batch, writes them with one write and one fsync, then releases
// their waiters. Records queued during the fsync form the next batch, so
// batches grow with the load and the cost of an fsync is shared.
func (j *Journal) runWriter() {
	defer close(j.done)
	var spare []byte // the previous batch's buffer, handed back to Append
	for {
		batch, last, closing := j.takeBatch(spare)
		if len(batch) > 0 {
			if err := j.writeBatch(batch); err != nil {
				j.fail(err)
				j.closeErr = j.failure
				j.active.file.Close() // may be closed already; the write error is what matters
				return
			}
			j.publish(last)
		}
		spare = batch
		if closing {
			j.closeErr = j.closeActive()
			return
		}
	}
}

// takeBatch waits until records are pending or the journal is closing and
// takes the pending records, leaving spare as the new pending buffer. It
// reports closing once the journal is closed and nothing is left.
func (j *Journal) takeBatch(spare []byte) (batch []byte, last uint64, closing bool) {
	for {
		j.mu.Lock()
		if len(j.pending) > 0 || j.closed {
			batch, j.pending = j.pending, spare[:0]
			last = j.nextSeq - 1
			closing = j.closed && len(batch) == 0
			j.spaceFree.Broadcast()
			j.mu.Unlock()
			return batch, last, closing
		}
		j.mu.Unlock()
		<-j.wake
	}
}

// writeBatch seals and writes a batch to the active segment, rotating
// first if the batch would take the segment past its size limit.
func (j *Journal) writeBatch(batch []byte) error {
	if a := j.active; a.size > 0 && a.size+int64(len(batch)) > j.opts.SegmentSize {
		if err := j.rotate(binary.LittleEndian.Uint64(batch[8:])); err != nil {
			return err
		}
	}
	sealBatch(batch)
	a := j.active
	n, err := a.file.Write(batch)
	a.size += int64(n)
	if err != nil {
		return fmt.Errorf("write %s: %w", segmentName(a.firstSeq), err)
	}
	if j.opts.Sync == SyncAlways {
		if err := a.file.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", segmentName(a.firstSeq), err)
		}
	}
	return nil
}

// rotate closes the active segment and starts a new one at firstSeq. The
// old segment is fsynced even with SyncNever: recovery only repairs the
// last segment, so every earlier one must be complete.
func (j *Journal) rotate(firstSeq uint64) error {
	if err := j.closeActive(); err != nil {
		return err
	}
	f, err := createSegment(j.dir, firstSeq)
	if err != nil {
		return err
	}
	j.active = &activeSegment{file: f, firstSeq: firstSeq}
	j.mu.Lock()
	j.segments = append(j.segments, firstSeq)
	j.mu.Unlock()
	return nil
}

func (j *Journal) closeActive() error {
	a := j.active
	err := a.file.Sync()
	if closeErr := a.file.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("journal: close %s: %w", segmentName(a.firstSeq), err)
	}
	return nil
}

// publish makes records up to last durable and wakes their waiters.
func (j *Journal) publish(last uint64) {
	j.mu.Lock()
	j.durable.Store(last)
	close(j.flushed)
	j.flushed = make(chan struct{})
	j.mu.Unlock()
}

// fail stops the journal after a write or fsync error. Nothing after the
// last durable record can be trusted to reach the disk, so every waiter
// beyond it, and every later Append, gets the error.
func (j *Journal) fail(err error) {
	j.mu.Lock()
	j.failure = fmt.Errorf("journal: stopped after a write error: %w", err)
	j.pending = nil
	close(j.flushed)
	j.flushed = make(chan struct{})
	j.spaceFree.Broadcast()
	j.mu.Unlock()
}
