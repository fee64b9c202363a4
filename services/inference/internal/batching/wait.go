package batching

import (
	"runtime"
	"time"
)

// timerSlack is how late a Go timer may fire when the process is otherwise idle: the runtime then
// sleeps in the network poller, whose timeout is in whole milliseconds, so a 500µs timer fires
// after 1-1.2ms. The last stretch of a wait is polled instead of left to a timer.
const timerSlack = 1500 * time.Microsecond

// await waits for the next queued job until deadline, precisely, or until stop reports true
// (checked when an instance finishes and between polls). got is false when it returned without a
// job; ok is false when the queue is closed.
//
// The part of the wait beyond timerSlack sleeps on a timer; the rest polls the queue, yielding
// the processor between polls: the callers that are about to send run meanwhile. Polling costs
// CPU, but only while company is expected, and for at most timerSlack per batch.
func (b *Batcher) await(deadline time.Time, stop func() bool) (j *job, ok, got bool) {
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil, true, false
		}
		if left > timerSlack {
			t := time.NewTimer(left - timerSlack)
			select {
			case j, ok = <-b.queue:
				t.Stop()
				return j, ok, true
			case <-b.freed:
				t.Stop()
			case <-t.C:
			}
		} else {
			select {
			case j, ok = <-b.queue:
				return j, ok, true
			default:
			}
			runtime.Gosched()
		}
		if stop() {
			return nil, true, false
		}
	}
}
