package batching

import (
	"runtime"
	"time"
)

// timerSlack is how late a Go timer may fire when the process is otherwise idle: the runtime then
// sleeps in the network poller, whose timeout is in whole milliseconds, so a 500µs timer fires
// after 1-1.2ms. The last stretch of a wait is polled instead of left to a timer.
const timerSlack = 1500 * time.Microsecond

// await waits for the next queued job until deadline, precisely, or until no other instance is
// executing. got is false when it returned without a job; ok is false when the queue is closed.
//
// The part of the wait beyond timerSlack sleeps on a timer; the rest polls the queue, yielding
// the processor between polls. Polling costs CPU, but only while another instance executes (a
// batch waits for nothing else) and for at most timerSlack per batch.
func (b *Batcher) await(deadline time.Time) (j *job, ok, got bool) {
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
			case <-b.idle:
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
		if b.executing.Load() == 0 {
			return nil, true, false
		}
	}
}
