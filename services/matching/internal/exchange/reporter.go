package exchange

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// reporter settles one shard's journal with risk. It sends the shard's settlement stream — trades
// with both legs, and releases — in journal order once each part is durable, and performs the
// shard's re-syncs of reservations at the journal position they were captured, between the parts
// before and after it. Risk applies each position once, so a part sent again after a crash (or with
// other batching) changes nothing.
//
// Nothing is ever dropped: a part risk refuses (a refusal retrying cannot fix, such as an unknown
// account or funds that do not cover a fee) halts the shard — its symbols refuse new orders, the
// status names the cause — and is retried every haltRetry, or at once on ResumeSettlement, until an
// operator has fixed the cause in risk.
//
// Goroutines: run is started by Open after recovery and ends when close has been called and the
// queue is drained, or at once when close gives up waiting. Only run calls risk (send, sync).
type reporter struct {
	x      *Exchange
	stream Stream
	log    *slog.Logger

	mu        sync.Mutex
	cond      *sync.Cond
	queue     []reportBatch
	queued    int    // settlement items in queue
	acked     uint64 // every item of journal records <= acked is settled in risk
	closing   bool
	syncing   bool
	syncedInc uint64 // risk incarnation of the last completed re-sync

	// Written only by run.
	riskWM  uint64 // risk's watermark of the stream, as last answered
	wmKnown bool
	buf     []SettleItem

	halt    atomic.Pointer[string] // why the shard is halted; nil while settlement flows
	stopped chan struct{}
	quit    chan struct{} // closed when close gives up: stop retrying
	resume  chan struct{}
}

type reportBatch struct {
	seq   uint64 // last journal record the batch covers
	items []SettleItem
	// sync, when set, is a re-sync captured after items (at journal position seq).
	sync *syncCapture
}

const (
	// maxSettle bounds one Settle call; a part is cut only between journal records, so one record
	// with more fills than this still travels whole.
	maxSettle = 2048
	// maxSyncChunk bounds one SyncReservations call.
	maxSyncChunk = 1000
	// haltRetry is how often a refused part is tried again while the shard is halted.
	haltRetry = 5 * time.Second
)

func newReporter(x *Exchange, log *slog.Logger) *reporter {
	rp := &reporter{x: x, log: log, stopped: make(chan struct{}), quit: make(chan struct{}), resume: make(chan struct{}, 1)}
	rp.cond = sync.NewCond(&rp.mu)
	return rp
}

// start sets where the stream resumes: everything up to seq (the snapshot recovery started from)
// was settled before the snapshot was written.
func (rp *reporter) start(seq uint64) {
	rp.mu.Lock()
	rp.acked = seq
	rp.mu.Unlock()
}

func (rp *reporter) push(b reportBatch) {
	rp.mu.Lock()
	rp.queue = append(rp.queue, b)
	rp.queued += len(b.items)
	rp.mu.Unlock()
	rp.cond.Broadcast()
}

// waitAcked blocks until reports up to seq are settled or the reporter stops; it reports whether
// seq was reached.
func (rp *reporter) waitAcked(seq uint64) bool {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	for rp.acked < seq && !rp.isStopped() {
		rp.cond.Wait()
	}
	return rp.acked >= seq
}

func (rp *reporter) isStopped() bool {
	select {
	case <-rp.stopped:
		return true
	default:
		return false
	}
}

func (rp *reporter) ackedSeq() uint64 {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return rp.acked
}

// haltReason is why the shard's settlement is halted, "" when it is not.
func (rp *reporter) haltReason() string {
	if r := rp.halt.Load(); r != nil {
		return *r
	}
	return ""
}

// resumeNow makes a halted reporter retry at once.
func (rp *reporter) resumeNow() {
	select {
	case rp.resume <- struct{}{}:
	default:
	}
}

// run delivers queued reports until close; it drains what is queued before it returns.
func (rp *reporter) run() {
	defer func() {
		close(rp.stopped)
		rp.cond.Broadcast()
	}()
	for {
		rp.mu.Lock()
		for len(rp.queue) == 0 && !rp.closing {
			rp.cond.Wait()
		}
		if len(rp.queue) == 0 {
			rp.mu.Unlock()
			return
		}
		batch := rp.queue
		rp.queue = nil
		rp.mu.Unlock()

		pending, n := rp.buf[:0], 0
		for _, b := range batch {
			pending = append(pending, b.items...)
			n += len(b.items)
			if b.sync != nil {
				if !rp.flush(pending) {
					return
				}
				pending = pending[:0]
				if !rp.resync(b.sync) {
					return
				}
			}
		}
		if !rp.flush(pending) {
			return
		}
		clear(pending)
		rp.buf = pending[:0]
		rp.mu.Lock()
		rp.acked = batch[len(batch)-1].seq
		rp.queued -= n
		rp.mu.Unlock()
		rp.cond.Broadcast()
	}
}

// flush settles items in parts of about maxSettle, cut between journal records. It returns false
// only when close gave up waiting.
func (rp *reporter) flush(items []SettleItem) bool {
	if len(items) == 0 {
		return true
	}
	if !rp.wmKnown && !rp.probe() {
		return false
	}
	// After a restart the journal replays parts risk already has: skip them here.
	for len(items) > 0 && items[0].Seq <= rp.riskWM {
		items = items[1:]
	}
	for len(items) > 0 {
		n := min(len(items), maxSettle)
		for n < len(items) && items[n].Seq == items[n-1].Seq {
			n++
		}
		b := SettleBatch{Stream: rp.stream, After: rp.riskWM, Through: items[n-1].Seq, Items: items[:n]}
		if !rp.send(b) {
			return false
		}
		items = items[n:]
	}
	return true
}

// probe asks risk where the stream stands (an empty part changes nothing).
func (rp *reporter) probe() bool {
	return rp.send(SettleBatch{Stream: rp.stream})
}

// send delivers one part, retrying until risk has applied it. A refusal halts the shard until a
// retry succeeds. It returns false only when close gave up waiting.
func (rp *reporter) send(b SettleBatch) bool {
	sctx, span := settleSpan(&b)
	defer span.End()
	backoff := 10 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(sctx, rp.x.cfg.RiskTimeout)
		ans, err := rp.x.risk.Settle(ctx, b)
		cancel()
		if err == nil {
			if b.Through > 0 && ans.Watermark > b.Through {
				// Only a replay after a restart finds risk ahead, and flush skips that before it
				// sends; ahead of a part it sent means another writer settled this stream.
				rp.log.Error("risk's watermark of the stream is ahead of the part it was sent: later items up to it are taken as settled",
					"risk_watermark", ans.Watermark, "after", b.After, "through", b.Through)
			}
			rp.riskWM, rp.wmKnown = max(ans.Watermark, b.Through), true
			rp.x.noteIncarnation(ans.Incarnation)
			if ans.Reclaimed > 0 {
				rp.x.requestResync(fmt.Sprintf("risk paid legs without a reservation from %d reservations of resting orders", ans.Reclaimed))
			}
			if rp.halt.Swap(nil) != nil {
				rp.log.Info("risk accepted the settlement; shard trading again", "through", b.Through)
			}
			return true
		}
		wait := backoff
		if permanent(err) {
			reason := fmt.Sprintf("risk refused the settlement of journal positions %d to %d: %v", b.After+1, b.Through, err)
			if rp.halt.Swap(&reason) == nil {
				rp.log.Error("settlement halted: the shard's symbols refuse new orders until risk accepts it", "err", err,
					"after", b.After, "through", b.Through, "items", len(b.Items))
			}
			wait = haltRetry
		} else {
			rp.log.Warn("risk settlement failed; retrying", "err", err, "backoff", backoff)
			backoff = min(backoff*2, time.Second)
		}
		if !rp.sleep(wait) {
			return false
		}
	}
}

// sleep waits d, or less if resumed; it reports false when close gave up waiting.
func (rp *reporter) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-rp.resume:
	case <-rp.quit:
		return false
	}
	return true
}

// resync replaces the shard's reservations in risk with the open orders of capture c. The capture
// is as of the watermark this reporter has settled the stream to when it reaches c — every item
// before c settled, none after — and only as of that: risk refusing it because its own watermark is
// another means risk and the journal disagree on what is settled, and re-syncing as of risk's
// watermark would count fills twice or never, and skip or never resend queued items. So a
// mismatch halts the shard, naming both positions, until an operator has fixed risk (the sync is
// retried every haltRetry, or at once on ResumeSettlement). A failure part way retries the whole
// sync. It returns false only when close gave up waiting.
func (rp *reporter) resync(c *syncCapture) bool {
	rp.mu.Lock()
	rp.syncing = true
	rp.mu.Unlock()
	defer func() {
		rp.mu.Lock()
		rp.syncing = false
		rp.mu.Unlock()
		c.finish()
	}()
	if !rp.wmKnown && !rp.probe() {
		return false
	}
	c.watermark = rp.riskWM
	backoff := 50 * time.Millisecond
	for refusals := 0; ; {
		var ans SyncAnswer
		err := rp.beyondCapture(c)
		if err == nil {
			ans, err = rp.syncOnce(c)
		}
		if err == nil {
			rp.mu.Lock()
			rp.syncedInc = ans.Incarnation
			rp.mu.Unlock()
			rp.x.noteIncarnation(ans.Incarnation)
			if rp.halt.Swap(nil) != nil {
				rp.log.Info("risk accepted the re-sync of reservations; shard trading again", "watermark", c.watermark)
			}
			if ans.Dropped > 0 || len(ans.Uncovered) > 0 {
				rp.log.Info("reservations re-synced with risk", "open_orders", len(c.reservations), "orphans_dropped", ans.Dropped,
					"uncovered", len(ans.Uncovered))
			}
			if len(ans.Uncovered) > 0 {
				rp.x.cancelUncovered(rp.stream.Shard, ans.Uncovered)
			}
			return true
		}
		wait := backoff
		switch {
		case !permanent(err):
			rp.log.Warn("re-sync of reservations failed; retrying it whole", "err", err, "backoff", backoff)
			backoff = min(backoff*2, 2*time.Second)
		case rp.mismatch(c, err):
			wait = haltRetry
		default:
			if refusals++; refusals >= 3 {
				rp.halted(fmt.Sprintf("risk refused the re-sync of reservations: %v", err),
					"settlement halted: risk refuses the re-sync of reservations", "err", err)
			}
			backoff = min(backoff*2, 2*time.Second)
		}
		if !rp.sleep(wait) {
			return false
		}
	}
}

// beyondCapture refuses a capture whose watermark is past its own journal position: risk has
// settled positions this journal does not have (it replayed less than it had reported).
func (rp *reporter) beyondCapture(c *syncCapture) error {
	if c.watermark <= c.seq {
		return nil
	}
	return errs.New(errs.KindFailedPrecondition, "stream %v: risk has settled up to position %d, beyond the journal's last position %d",
		rp.stream, c.watermark, c.seq)
}

// mismatch reports whether err, a refusal of c's re-sync, is because risk's watermark of the stream
// is not c's; if so it halts the shard naming both. It asks risk for its watermark without adopting
// it.
func (rp *reporter) mismatch(c *syncCapture, err error) bool {
	risk := c.watermark
	if c.watermark <= c.seq {
		ctx, cancel := context.WithTimeout(context.Background(), rp.x.cfg.RiskTimeout)
		ans, perr := rp.x.risk.Settle(ctx, SettleBatch{Stream: rp.stream})
		cancel()
		if perr != nil || ans.Watermark == c.watermark {
			return false // unknown, or refused for another reason
		}
		risk = ans.Watermark
	}
	rp.halted(fmt.Sprintf("risk's watermark of the stream is %d but the re-sync captured at journal position %d is as of watermark %d "+
		"(risk and the journal disagree on what is settled): %v", risk, c.seq, c.watermark, err),
		"settlement halted: risk's watermark of the stream is not the re-sync's", "risk_watermark", risk,
		"capture_watermark", c.watermark, "capture_seq", c.seq, "err", err)
	return true
}

// halted records why the shard is halted, logging msg the first time.
func (rp *reporter) halted(reason, msg string, args ...any) {
	if rp.halt.Swap(&reason) == nil {
		rp.log.Error(msg, args...)
	}
}

// syncOnce sends c in chunks, the last one final. Risk restarting between chunks makes it fail
// (the earlier chunks were lost with it), so the caller starts over.
func (rp *reporter) syncOnce(c *syncCapture) (SyncAnswer, error) {
	var total SyncAnswer
	rs := c.reservations
	for first := true; first || len(rs) > 0; first = false {
		n := min(len(rs), maxSyncChunk)
		b := SyncBatch{Stream: rp.stream, Watermark: c.watermark, Session: rp.x.session, Generation: c.generation,
			Reservations: rs[:n], Final: n == len(rs)}
		ctx, cancel := context.WithTimeout(context.Background(), rp.x.cfg.RiskTimeout)
		ans, err := rp.x.risk.Sync(ctx, b)
		cancel()
		if err != nil {
			return total, err
		}
		if !first && ans.Incarnation != total.Incarnation {
			return total, errs.New(errs.KindUnavailable, "risk restarted during the re-sync")
		}
		total.Incarnation = ans.Incarnation
		total.Dropped += ans.Dropped
		total.Uncovered = append(total.Uncovered, ans.Uncovered...)
		rs = rs[n:]
	}
	return total, nil
}

// status reports the reporter's side of the shard's settlement.
func (rp *reporter) status() (settled uint64, queued int, syncing bool, inc uint64) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return rp.acked, rp.queued, rp.syncing, rp.syncedInc
}

// close asks run to finish after draining the queue and waits for it, at most until ctx ends; then
// run stops retrying and returns.
func (rp *reporter) close(ctx context.Context) error {
	rp.mu.Lock()
	rp.closing = true
	rp.mu.Unlock()
	rp.cond.Broadcast()
	select {
	case <-rp.stopped:
		return nil
	case <-ctx.Done():
		close(rp.quit)
		return ctx.Err()
	}
}
