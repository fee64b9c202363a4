package batching

import "slices"

// collect forms a batch starting with first and returns it holding an instance slot, for run.
// It always takes what is already queued, up to MaxBatchSize (a job that would overfill the batch
// is returned as the start of the next one). Once nothing else is queued it stops waiting for
// company when:
//   - the batch reached a preferred size;
//   - it holds every job that is waiting (with StopWhenAllQueued);
//   - an instance is free and the batch has the company the previous batch suggests;
//   - the oldest job has waited MaxQueueDelay.
//
// The previous batch's size is the company to expect: the callers it answered are likely to send
// again, so a closed loop of c callers forms batches of c instead of running the first one back
// alone, while at low load requests find the server idle and run at once in Submit. When load
// drops, one batch waits out the delay and the expectation falls with it. Until an instance is
// free, the batch keeps taking company (it could not run sooner anyway). open is false once the
// queue is closed and drained.
func (b *Batcher) collect(first *job) (batch []*job, next *job, open bool) {
	batch = []*job{first}
	rows := first.rows
	limit := int64(b.cfg.MaxBatchSize)
	deadline := first.queued.Add(b.cfg.MaxQueueDelay)
	open = true
	// take adds a received job; false once the batch can take no more.
	take := func(j *job, ok bool) bool {
		switch {
		case !ok:
			open = false
			return false
		case rows+j.rows > limit:
			next = j
			return false
		}
		batch = append(batch, j)
		rows += j.rows
		return rows < limit
	}
	enough := func() bool {
		return len(b.slots) < cap(b.slots) && int64(len(batch)) >= b.expect.Load()
	}
	more := rows < limit
	for more {
		select {
		case j, ok := <-b.queue:
			more = take(j, ok)
			continue
		default:
		}
		if b.preferred(rows) || enough() || (b.cfg.StopWhenAllQueued && int64(len(batch)) >= b.waiting.Load()) {
			break
		}
		j, ok, got := b.await(deadline, enough)
		if !got {
			break
		}
		more = take(j, ok)
	}
	for more {
		select {
		case b.slots <- struct{}{}:
			return batch, next, open
		case j, ok := <-b.queue:
			more = take(j, ok)
		}
	}
	b.slots <- struct{}{}
	return batch, next, open
}

func (b *Batcher) preferred(rows int64) bool {
	_, found := slices.BinarySearch(b.cfg.Preferred, int(rows))
	return found
}
