package exchange

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/matching/internal/book"
	"github.com/bourse-dev/bourse/services/matching/internal/journal"
)

type cmdKind uint8

const (
	cmdSubmit cmdKind = iota + 1
	cmdCancel
	cmdCancelAll
	cmdAmend
	cmdAddSymbol
	cmdQuery
	cmdSync // capture the open orders for a re-sync of reservations with risk
)

// command is work for a shard goroutine.
type command struct {
	kind  cmdKind
	m     *market
	jc    journal.Command // cmdSubmit: all but ids and time; cmdAddSymbol: complete
	ref   OrderRef        // cmdCancel, cmdAmend
	amend AmendRequest    // cmdAmend
	// reservation is the risk reservation a cmdAmend already obtained, for checkQty lots at
	// checkPrice.
	reservation          uint64
	checkPrice, checkQty int64
	spec                 Spec              // cmdAddSymbol
	trace                trace.SpanContext // the caller's trace: an amend's risk check, settlement links
	query                func(out *output)
	sync                 *syncCapture // cmdSync
	done                 func(Result)
}

// shard owns a group of markets and their journal. One goroutine applies every command, so books
// need no locks; commands queue in a slice that the goroutine swaps out whole, which batches them
// for one journal fsync.
type shard struct {
	x       *Exchange
	index   int
	journal *journal.Journal
	markets []*market
	// marketCount mirrors len(markets) for AddSymbol's choice of shard.
	marketCount atomic.Int32
	rep         *reporter
	// syncPending is set while a re-sync capture of this shard is queued or being sent (resync.go).
	syncPending atomic.Bool
	// syncMissed is set by a round that passed over the shard because its capture was pending; the
	// capture's end then asks for another round (the one passed over may be for a later risk start).
	syncMissed atomic.Bool
	// uncovering counts the cancels of orders a re-sync left uncovered that are not yet answered
	// (and the scan that finds them); the shard says it is syncing meanwhile (resync.go).
	uncovering atomic.Int64

	mu      sync.Mutex
	queue   []command
	spare   []command
	closing bool
	wake    chan struct{}
	stopped chan struct{}

	buf       []byte
	sinceSnap int
	snapshots chan snapshotJob
	snapDone  chan struct{}
}

type snapshotJob struct {
	seq   uint64
	state *shardState
}

// enqueue hands a command to the shard; it fails when the queue is full or the shard is stopping.
func (sh *shard) enqueue(c command) error {
	sh.mu.Lock()
	if sh.closing {
		sh.mu.Unlock()
		return errs.New(errs.KindUnavailable, "matching is shutting down")
	}
	if len(sh.queue) >= sh.x.cfg.QueueLimit {
		sh.mu.Unlock()
		return errs.New(errs.KindResourceExhausted, "order queue of this symbol group is full; retry later")
	}
	sh.queue = append(sh.queue, c)
	n := len(sh.queue)
	sh.mu.Unlock()
	if n == 1 {
		select {
		case sh.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

func (sh *shard) run() {
	defer close(sh.stopped)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var out output
	for {
		sh.mu.Lock()
		if len(sh.queue) == 0 {
			closing := sh.closing
			sh.mu.Unlock()
			if closing {
				return
			}
			select {
			case <-sh.wake:
			case <-tick.C:
				sh.expire(&out)
				sh.finish(&out)
			}
			continue
		}
		// Producers append to a fresh array while this goroutine works through the old one.
		batch := sh.queue
		sh.queue, sh.spare = sh.spare[:0], nil
		sh.mu.Unlock()
		for i := range batch {
			start := len(out.settle)
			sh.execute(&batch[i], &out)
			stampTrace(out.settle[start:], batch[i].trace)
		}
		sh.expire(&out)
		sh.finish(&out)
		clear(batch)
		sh.spare = batch[:0]
	}
}

// execute runs one command; journaled commands are appended before they are applied.
func (sh *shard) execute(c *command, out *output) {
	now := sh.x.cfg.Now()
	m := c.m
	switch c.kind {
	case cmdQuery:
		c.query(out)
	case cmdAddSymbol:
		c.jc.Timestamp = now
		if !sh.append(&c.jc, c.done, out) {
			return
		}
		sh.addMarket(c.spec)
		out.reply(c.done, Result{})
	case cmdSubmit:
		jc := &c.jc
		jc.Timestamp = now
		jc.Order.Now = now
		jc.Order.ID = m.lastID + 1
		jc.Order.Account = m.acctNum(jc.AccountID)
		if jc.Order.TIF == book.DAY {
			jc.Order.ExpireAt = sh.x.dayEnd(now)
		}
		if !sh.append(jc, c.done, out) {
			return
		}
		o, fills, _ := m.apply(jc, out)
		out.reply(c.done, Result{Order: *o, Fills: fills})
	case cmdCancel:
		o := m.lookup(c.ref)
		if err := openOrderErr(o); err != nil {
			out.reply(c.done, Result{Err: err})
			return
		}
		jc := journal.Command{Kind: journal.CommandCancel, Symbol: m.spec.Symbol, Timestamp: now, AccountID: o.Account, OrderID: o.ID}
		if !sh.append(&jc, c.done, out) {
			return
		}
		m.apply(&jc, out)
		out.reply(c.done, Result{Order: *o})
	case cmdCancelAll:
		n, ok := m.accts[c.ref.Account]
		if !ok {
			out.reply(c.done, Result{})
			return
		}
		jc := journal.Command{Kind: journal.CommandCancelAll, Symbol: m.spec.Symbol, Timestamp: now, AccountID: c.ref.Account, Account: n}
		if !sh.append(&jc, c.done, out) {
			return
		}
		_, _, cancelled := m.apply(&jc, out)
		out.reply(c.done, Result{Cancelled: cancelled})
	case cmdAmend:
		sh.amend(c, now, out)
	case cmdSync:
		sh.captureSync(c.sync, out)
	}
}

func openOrderErr(o *Order) error {
	if o == nil {
		return errs.New(errs.KindNotFound, "order not found")
	}
	if o.Status.closed() {
		return errs.New(errs.KindFailedPrecondition, "order is already closed (%s)", statusName(o.Status))
	}
	return nil
}

// amend applies an amend, first obtaining a new risk reservation when it adds exposure: a higher
// quantity, or a new price (a buy may then pay more, a sell receive less, than was reserved for).
func (sh *shard) amend(c *command, now int64, out *output) {
	m := c.m
	o := m.lookup(c.ref)
	if err := openOrderErr(o); err != nil {
		if c.reservation != 0 {
			sh.x.releaseNow(c.reservation) // never journaled: not part of the stream
		}
		out.reply(c.done, Result{Err: err})
		return
	}
	a := c.amend
	newPrice, newQty := o.Price, o.Qty
	if a.Price != 0 {
		newPrice = a.Price
	}
	if a.Qty != 0 {
		newQty = a.Qty
	}
	grows := newQty > o.Qty || newPrice != o.Price
	if c.reservation != 0 && (c.checkPrice != newPrice || c.checkQty < newQty-o.Filled) {
		// Another amend moved the order while this one was checked: the reservation was made for
		// another price or fewer lots than this amend now means. Check again.
		sh.x.releaseNow(c.reservation)
		c.reservation = 0
	}
	if grows && c.reservation == 0 {
		if newQty <= o.Filled {
			// The book refuses this without touching anything; no reservation is needed to say so.
			grows = false
		} else {
			check := RiskCheck{Spec: &m.spec, Shard: uint32(sh.index), Account: o.Account, Side: o.Side, Market: o.Type == TypeStop, Price: newPrice, Qty: newQty - o.Filled,
				Replaces: o.reservation}
			retry, current := *c, *o
			sh.x.checker.submit(trace.ContextWithSpanContext(context.Background(), c.trace), check, func(d RiskDecision, err error) {
				switch {
				case err != nil:
					retry.done(Result{Err: err})
				case !d.Accepted:
					cp := current
					cp.Reject, cp.RiskReject = RejectRisk, d.Reason
					retry.done(Result{Order: cp})
				default:
					retry.reservation, retry.checkPrice, retry.checkQty = d.ReservationID, check.Price, check.Qty
					if err := sh.enqueue(retry); err != nil {
						sh.x.releaseNow(d.ReservationID)
						// Risk released the order's reservation in favour of this one.
						sh.x.requestResync("an amend's replacement reservation was not used")
						retry.done(Result{Err: err})
					}
				}
			})
			return
		}
	}
	jc := journal.Command{Kind: journal.CommandAmend, Symbol: m.spec.Symbol, Timestamp: now, AccountID: o.Account,
		ReservationID: c.reservation, Amend: book.Amend{ID: o.ID, Price: a.Price, Qty: a.Qty, TriggerPrice: a.TriggerPrice}}
	if !sh.append(&jc, c.done, out) {
		return
	}
	res, fills, _ := m.apply(&jc, out)
	if res == nil {
		out.reply(c.done, Result{Err: errs.New(errs.KindNotFound, "order not found")})
		return
	}
	if c.reservation != 0 && o.reservation == c.reservation && !o.Status.closed() {
		// A fill between the check and now left the order fewer lots than the reservation was made
		// for: free the excess (I2). A replay does not repeat this; the re-sync after it trims instead.
		if n := c.checkQty - o.Remaining - filledBy(fills); n > 0 {
			out.settle = append(out.settle, SettleItem{Seq: out.seq, Trade: Trade{Spec: &m.spec}, ShrinkID: c.reservation, Shrink: n, liveOnly: true})
		}
	}
	out.reply(c.done, Result{Order: *res, Fills: fills})
}

// expire journals an Expire command for every market with an order due.
func (sh *shard) expire(out *output) {
	now := sh.x.cfg.Now()
	for _, m := range sh.markets {
		if at, ok := m.book.NextExpiry(); ok && at <= now {
			jc := journal.Command{Kind: journal.CommandExpire, Symbol: m.spec.Symbol, Timestamp: now}
			if sh.append(&jc, nil, out) {
				m.apply(&jc, out)
			}
		}
	}
}

// append journals a command; on failure it answers the command and stops the service, since a
// journal that cannot write cannot be trusted with the next command either.
func (sh *shard) append(jc *journal.Command, done func(Result), out *output) bool {
	sh.buf = journal.AppendEncode(sh.buf[:0], *jc)
	seq, err := sh.journal.Enqueue(sh.buf)
	if err != nil {
		sh.x.fail(fmt.Errorf("journal of shard %d: %w", sh.index, err))
		out.reply(done, Result{Err: errs.Wrap(errs.KindUnavailable, err, "journal failed; matching is restarting")})
		return false
	}
	out.seq = seq
	sh.sinceSnap++
	return true
}

// finish makes the batch durable, then answers, publishes and reports it.
func (sh *shard) finish(out *output) {
	last := sh.journal.LastSeq()
	if err := sh.journal.WaitDurable(last); err != nil {
		sh.x.fail(fmt.Errorf("journal of shard %d: %w", sh.index, err))
		for _, r := range out.replies {
			r.done(Result{Err: errs.Wrap(errs.KindUnavailable, err, "journal failed; matching is restarting")})
		}
		*out = output{}
		return
	}
	for _, m := range sh.markets {
		m.publishTop()
	}
	for i := range out.md {
		out.md[i].publish()
	}
	sh.x.fills.publish(out.fills)
	sh.report(out, last)
	for _, r := range out.replies {
		r.done(r.res)
	}
	clear(out.replies)
	clear(out.md)
	out.replies, out.md, out.fills = out.replies[:0], out.md[:0], out.fills[:0]
	// Reports are handed over, not reused: the reporter owns that slice now.
	out.settle, out.sync, out.syncAt = nil, nil, 0
	if sh.x.cfg.SnapshotEvery > 0 && sh.sinceSnap >= sh.x.cfg.SnapshotEvery {
		sh.sinceSnap = 0
		select {
		case sh.snapshots <- snapshotJob{seq: last, state: sh.captureState()}:
		default: // the previous snapshot is still being written; skip this one
		}
	}
}

// writeSnapshots stores snapshots once the risk service has every report they cover: replay
// starts after a snapshot, so nothing it covers would be reported again.
func (sh *shard) writeSnapshots() {
	defer close(sh.snapDone)
	for job := range sh.snapshots {
		data, err := job.state.encode()
		if err != nil {
			sh.x.log.Error("encode snapshot", "shard", sh.index, "err", err)
			continue
		}
		if !sh.rep.waitAcked(job.seq) {
			continue
		}
		if err := sh.journal.WriteSnapshot(job.seq, data); err != nil {
			sh.x.log.Error("write snapshot", "shard", sh.index, "seq", job.seq, "err", err)
		}
	}
}

func (sh *shard) addMarket(spec Spec) *market {
	m := newMarket(spec, sh, &sh.x.cfg)
	sh.markets = append(sh.markets, m)
	sh.marketCount.Add(1)
	sh.x.publishMarket(m)
	return m
}

// stop finishes queued commands and stops the goroutine.
func (sh *shard) stop(ctx context.Context) {
	sh.mu.Lock()
	sh.closing = true
	sh.mu.Unlock()
	select {
	case sh.wake <- struct{}{}:
	default:
	}
	select {
	case <-sh.stopped:
	case <-ctx.Done():
	}
}
