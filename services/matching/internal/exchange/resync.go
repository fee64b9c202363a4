package exchange

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// Re-syncs of reservations with risk (see the README's "Joint invariants"). A round:
//
//  1. bumps the check generation: checks sent from now on carry g+1, and waits until no check
//     call of generation <= g is in flight, so every reservation those checks made belongs to an
//     order already in a shard queue, or to none;
//  2. queues a cmdSync in every shard: the shard goroutine captures its open orders at that point
//     of its journal, and the batch hands the capture to the shard's reporter between the
//     settlement items before it and those after it;
//  3. each reporter settles everything before the capture, then replaces the shard's
//     reservations in risk with the captured orders, as of risk's watermark — which is then the
//     capture's position, so no fill is counted both in a reservation and in a settlement.
//
// Rounds run at start, whenever a risk answer carries a new incarnation (risk restarted and lost its
// reservations), and after a check whose outcome is unknown (it may have reserved). A heartbeat asks
// risk for its incarnation every ProbeEvery, so an idle exchange notices a restart too.

// syncCapture is one shard's part of a round.
type syncCapture struct {
	generation   uint64
	seq          uint64 // journal position of the capture
	watermark    uint64 // the stream's position settled before it; set by the reporter
	reservations []Reservation
	once         sync.Once
	done         func()
}

func (c *syncCapture) finish() {
	c.once.Do(func() {
		if c.done != nil {
			c.done()
		}
	})
}

// captureSync runs on the shard goroutine: it records the open orders' reservations as of the
// last journaled command.
func (sh *shard) captureSync(c *syncCapture, out *output) {
	if out.sync != nil {
		// Two rounds in one batch: the later capture serves both.
		prev := out.sync
		defer prev.finish()
	}
	c.seq = sh.journal.LastSeq()
	c.reservations = c.reservations[:0]
	for _, m := range sh.markets {
		for _, o := range m.orders {
			if !o.Status.closed() && o.reservation != 0 {
				c.reservations = append(c.reservations, Reservation{Spec: &m.spec, ID: o.reservation, Account: o.Account,
					Side: o.Side, Price: o.reservePrice, Qty: o.Remaining})
			}
		}
	}
	out.sync, out.syncAt = c, len(out.settle)
}

// report hands a durable batch's settlement to the reporter, split around a re-sync capture.
func (sh *shard) report(out *output, last uint64) {
	items := out.settle
	if out.sync != nil {
		sh.rep.push(reportBatch{seq: out.sync.seq, items: items[:out.syncAt:out.syncAt], sync: out.sync})
		items = items[out.syncAt:]
	}
	if len(items) > 0 || sh.rep.ackedSeq() < last {
		sh.rep.push(reportBatch{seq: last, items: items})
	}
}

// resyncer runs the rounds; its goroutine is started by Open and stopped by Close.
type resyncer struct {
	wake    chan struct{}
	quit    chan struct{}
	stopped chan struct{}
	// requested counts requests; served is the count the last finished round began with. While
	// requested > served a round is owed, and the shards report themselves syncing: between a
	// request and its round's captures no shard's syncPending is set yet, and an operator (or a
	// test) reading "not syncing" then would take missing reservations for settled ones.
	requested atomic.Uint64
	served    atomic.Uint64
	// incMu orders noteIncarnation's changes of incarnation (never held on its fast path).
	incMu sync.Mutex
	// uncovering counts the goroutines of cancelUncovered; Close waits for them once the reporters,
	// which start them, have stopped.
	uncovering sync.WaitGroup
}

// owed reports whether a requested round has not yet queued its captures.
func (r *resyncer) owed() bool { return r.requested.Load() > r.served.Load() }

// requestResync asks for a round; requests while one is pending merge into it.
func (x *Exchange) requestResync(reason string) {
	x.resync.requested.Add(1) // before anything that may take time: the status says syncing from here
	x.log.Info("re-sync of reservations with risk requested", "reason", reason)
	select {
	case x.resync.wake <- struct{}{}:
	default:
	}
}

// noteIncarnation records risk's incarnation from an answer; a new one starts a round. The round
// is counted before the incarnation is stored: another answer of the new incarnation takes the
// fast path only once it is, so its caller (an order acknowledged, then a status read) cannot read
// "not syncing" between the two.
func (x *Exchange) noteIncarnation(inc uint64) {
	if x.riskInc.Load() == inc && x.riskIncKnown.Load() {
		return // the common case: reads only, no shared write per risk answer
	}
	x.resync.incMu.Lock()
	defer x.resync.incMu.Unlock()
	old, known := x.riskInc.Load(), x.riskIncKnown.Load()
	if known && old == inc {
		return
	}
	if known {
		x.requestResync(fmt.Sprintf("risk restarted (incarnation %d, was %d): its reservations are gone", inc, old))
	}
	x.riskInc.Store(inc)
	x.riskIncKnown.Store(true)
}

func (x *Exchange) runResync() {
	defer close(x.resync.stopped)
	tick := time.NewTicker(x.cfg.ProbeEvery)
	defer tick.Stop()
	for {
		select {
		case <-x.resync.quit:
			return
		case <-tick.C:
			x.probeIncarnation()
			continue
		case <-x.resync.wake:
		}
		if !x.resyncRound() {
			return
		}
	}
}

// probeIncarnation asks risk for its incarnation with an empty settlement part.
func (x *Exchange) probeIncarnation() {
	if len(x.shards) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), x.cfg.RiskTimeout)
	defer cancel()
	if ans, err := x.risk.Settle(ctx, SettleBatch{Stream: x.shards[0].rep.stream}); err == nil {
		x.noteIncarnation(ans.Incarnation)
		x.applyKillSwitches(ans.AllHalted, ans.HaltedAccounts)
	}
}

// applyKillSwitches cancels the resting orders of accounts risk has halted (of every account when
// the global switch is halted): risk refuses their new orders, and a kill switch must also take
// what rests off the books. It runs on the resync goroutine once a second while any switch is on.
func (x *Exchange) applyKillSwitches(all bool, halted []string) {
	if !all && len(halted) == 0 {
		return
	}
	set := make(map[string]bool, len(halted))
	for _, a := range halted {
		set[a] = true
	}
	for acct := range x.accountsWithOpenOrders(func(a string) bool { return all || set[a] }) {
		x.log.Warn("kill switch: cancelling the account's resting orders", "account", acct, "all", all)
		x.CancelAll(acct, "", func(r Result) {
			if r.Err != nil {
				x.log.Error("kill switch: cancel failed", "account", acct, "err", r.Err)
			}
		})
	}
}

// accountsWithOpenOrders returns the accounts passing want that have an open order, asking each
// shard (and giving up on a shard that does not answer within the risk timeout).
func (x *Exchange) accountsWithOpenOrders(want func(string) bool) map[string]bool {
	out := map[string]bool{}
	var mu sync.Mutex
	for _, sh := range x.shards {
		done := make(chan struct{})
		err := sh.enqueue(command{kind: cmdQuery, query: func(*output) {
			defer close(done)
			for _, m := range sh.markets {
				for _, o := range m.orders {
					if !o.Status.closed() && want(o.Account) {
						mu.Lock()
						out[o.Account] = true
						mu.Unlock()
					}
				}
			}
		}})
		if err != nil {
			continue
		}
		select {
		case <-done:
		case <-time.After(x.cfg.RiskTimeout):
		case <-x.resync.quit:
			return out
		}
	}
	mu.Lock()
	defer mu.Unlock()
	return maps.Clone(out)
}

// resyncRound runs one round; it returns false when the exchange is closing. It does not wait for
// the shards' re-syncs to finish: a shard whose settlement is halted would hold every later round
// (and every shard) back. A shard whose previous capture is still pending gets no second one; the
// pending one re-syncs it, and what it does not cover (checks of the generations since) waits for
// the next round.
func (x *Exchange) resyncRound() bool {
	covers := x.resync.requested.Load() // requests after this load wake the next round
	g := x.checker.bump()
	if !x.checker.waitIdle(g, x.resync.quit) {
		return false
	}
	for _, sh := range x.shards {
		sh.syncMissed.Store(true)
		if !sh.syncPending.CompareAndSwap(false, true) {
			continue
		}
		sh.syncMissed.Store(false)
		c := &syncCapture{generation: g, done: sh.syncDone}
		for {
			err := sh.enqueue(command{kind: cmdSync, sync: c})
			if err == nil {
				break
			}
			if errs.KindOf(err) != errs.KindResourceExhausted {
				c.finish() // closing
				break
			}
			select { // the queue is full: the capture waits its turn
			case <-time.After(10 * time.Millisecond):
			case <-x.resync.quit:
				return false
			}
		}
	}
	x.resync.served.Store(covers)
	return true
}

// syncDone ends a shard's capture; if a round passed over the shard meanwhile, it asks for another.
// The request comes before syncMissed is cleared, so that the shard says it is syncing throughout
// (pending, then missed, then the round owed); the Swap after it still catches a round that passed
// over the shard while this ran, as it did.
func (sh *shard) syncDone() {
	sh.syncPending.Store(false)
	asked := sh.syncMissed.Load()
	if asked {
		sh.x.requestResync("a round passed over a shard whose re-sync was still pending")
	}
	if sh.syncMissed.Swap(false) && !asked {
		sh.x.requestResync("a round passed over a shard whose re-sync was still pending")
	}
}

// cancelUncovered cancels the open orders of shard whose reservations risk could not restore (their
// account no longer has the funds): an order may not rest without its reservation. It returns at
// once; its goroutine retries until none of those orders is open, so a full shard queue or a cancel
// refused for load delays the cancels, never drops them. Close stops it (the resync quit channel)
// and waits for it.
func (x *Exchange) cancelUncovered(shard uint32, ids []uint64) {
	if int(shard) >= len(x.shards) {
		return
	}
	want := make(map[uint64]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	sh := x.shards[shard]
	// Counted before the reporter ends its re-sync, so the shard says syncing without a gap until
	// every such order is cancelled (journaled): until then risk holds nothing for orders still open.
	sh.uncovering.Add(1)
	x.resync.uncovering.Go(func() {
		defer sh.uncovering.Add(-1)
		backoff := 10 * time.Millisecond
		for {
			refs, err := x.openWithReservations(sh, want)
			if err == nil && len(refs) == 0 {
				return
			}
			if err == nil && x.cancelEach(refs) {
				continue // all answered: read again, and stop once none is open
			}
			if err != nil && errs.KindOf(err) != errs.KindResourceExhausted {
				x.log.Info("cancels of unreserved orders stopped: matching is closing", "shard", shard, "err", err)
				return
			}
			select {
			case <-time.After(backoff):
				backoff = min(2*backoff, time.Second)
			case <-x.resync.quit:
				return
			}
		}
	})
}

// openWithReservations lists the shard's open orders holding one of the reservations in want.
func (x *Exchange) openWithReservations(sh *shard, want map[uint64]bool) ([]OrderRef, error) {
	var refs []OrderRef
	done := make(chan struct{})
	if err := sh.enqueue(command{kind: cmdQuery, query: func(*output) {
		defer close(done)
		for _, m := range sh.markets {
			for _, o := range m.orders {
				if !o.Status.closed() && want[o.reservation] {
					refs = append(refs, OrderRef{Account: o.Account, Symbol: m.spec.Symbol, OrderID: o.ID})
				}
			}
		}
	}}); err != nil {
		return nil, err
	}
	select {
	case <-done:
		return refs, nil
	case <-x.resync.quit:
		return nil, errs.New(errs.KindUnavailable, "matching is shutting down")
	}
}

// cancelEach cancels refs and waits for every answer; it reports whether every cancel succeeded.
// A refused one is retried after a backoff: an order filled or cancelled meanwhile is not listed
// again, and one refused for load (a full queue) or by a failed journal is.
func (x *Exchange) cancelEach(refs []OrderRef) bool {
	type answer struct {
		ref OrderRef
		err error
	}
	answers := make(chan answer, len(refs)) // room for every answer: the callbacks never block
	for _, ref := range refs {
		x.log.Warn("cancelling an order whose reservation risk could not restore", "symbol", ref.Symbol, "order", ref.OrderID, "account", ref.Account)
		x.Cancel(ref, func(r Result) { answers <- answer{ref, r.Err} })
	}
	ok := true
	for range refs {
		select {
		case a := <-answers:
			if a.err != nil {
				x.log.Error("cancel of an unreserved order failed; retrying", "order", a.ref.OrderID, "err", a.err)
				ok = false
			}
		case <-x.resync.quit:
			return false
		}
	}
	return ok
}

// ShardSettlement is one shard's settlement with risk, for operators.
type ShardSettlement struct {
	Shard           int
	Epoch           uint64
	JournalSeq      uint64
	SettledSeq      uint64
	Queued          int
	Halted          bool
	HaltReason      string
	Syncing         bool
	RiskIncarnation uint64
}

// SettlementStatus reports every shard's settlement.
func (x *Exchange) SettlementStatus() []ShardSettlement {
	out := make([]ShardSettlement, len(x.shards))
	for i, sh := range x.shards {
		out[i] = sh.settlementStatus()
	}
	return out
}

func (sh *shard) settlementStatus() ShardSettlement {
	settled, queued, syncing, inc := sh.rep.status()
	reason := sh.rep.haltReason()
	return ShardSettlement{Shard: sh.index, Epoch: sh.rep.stream.Epoch, JournalSeq: sh.journal.LastSeq(), SettledSeq: settled,
		Queued: queued, Halted: reason != "", HaltReason: reason, Syncing: syncing || sh.syncPending.Load() || sh.syncMissed.Load() || sh.uncovering.Load() > 0 || sh.x.resync.owed(), RiskIncarnation: inc}
}

// ResumeSettlement makes a halted shard retry its refused settlement now.
func (x *Exchange) ResumeSettlement(shard int) (ShardSettlement, error) {
	if shard < 0 || shard >= len(x.shards) {
		return ShardSettlement{}, errs.New(errs.KindNotFound, "shard: no shard %d (there are %d)", shard, len(x.shards))
	}
	sh := x.shards[shard]
	sh.rep.resumeNow()
	return sh.settlementStatus(), nil
}

// haltedErr is the refusal of new orders on a halted shard's symbols.
func haltedErr(symbol, reason string) error {
	return errs.New(errs.KindFailedPrecondition,
		"symbol %s: trading is halted because settlement with risk is stuck (%s); an operator must fix the cause and call ResumeSettlement", symbol, reason)
}

// shardEpoch returns the epoch of a shard's journal, stored next to it. A journal that starts over
// (new, or lost: empty with no snapshot) gets a new one, so its positions never collide with a
// previous journal's in risk.
func shardEpoch(dir string, fresh bool) (uint64, error) {
	path := filepath.Join(dir, "epoch")
	if !fresh {
		b, err := os.ReadFile(path)
		if err == nil {
			v, perr := strconv.ParseUint(strings.TrimSpace(string(b)), 16, 64)
			if perr != nil || v == 0 {
				return 0, fmt.Errorf("epoch file %s is corrupt: %q", path, b)
			}
			return v, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return 0, err
		}
	}
	var raw [8]byte
	var epoch uint64
	for epoch == 0 {
		if _, err := rand.Read(raw[:]); err != nil {
			return 0, err
		}
		epoch = binary.BigEndian.Uint64(raw[:])
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return 0, err
	}
	_, err = f.WriteString(hex.EncodeToString(raw[:]) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return 0, fmt.Errorf("write epoch: %w", err)
	}
	return epoch, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// newSession returns a random non-zero id for this process's checks.
func newSession() uint64 {
	var raw [8]byte
	for {
		if _, err := rand.Read(raw[:]); err != nil {
			return uint64(time.Now().UnixNano()) | 1
		}
		if v := binary.BigEndian.Uint64(raw[:]); v != 0 {
			return v
		}
	}
}
