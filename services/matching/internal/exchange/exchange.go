// Package exchange is the matching engine around the order books: symbols spread over shards (one
// goroutine and one journal each), the risk check before an order reaches a book, the journal
// before anything is acknowledged, settlement of fills with the risk service, market data, and
// recovery from snapshot plus journal replay. It knows nothing of gRPC: the API layer parses
// decimals into ticks and lots with a symbol's Spec and maps errors (pkg/errs kinds) to codes.
//
// A command's life: the request goroutine claims the client order id and asks risk (checks from
// many requests share one call); an accepted order joins its shard's queue; the shard goroutine
// takes the whole queue, journals and applies each command, waits once for the journal to be
// durable, then answers, publishes market data and hands the fills and releases to the shard's
// reporter, which settles them with risk in journal order.
package exchange

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/matching/internal/book"
	"github.com/bourse-dev/bourse/services/matching/internal/journal"
)

// Config is fixed for an exchange's life.
type Config struct {
	DataDir string
	// Shards is the number of symbol groups (goroutines and journals) for new symbols; existing
	// shard directories are always opened.
	Shards int
	// Retain is how many closed orders per symbol stay readable (GetOrder) in full.
	Retain int
	// IDWindow is how long a closed order's client order id stays taken (a repeat answers
	// "duplicate"); IDCap bounds, per symbol, the ids kept past the Retain full records.
	IDWindow time.Duration
	IDCap    int
	// SnapshotEvery is the number of journaled commands between snapshots of a shard; 0 disables.
	SnapshotEvery int
	// NoSync skips fsync (benchmarks only): records survive a process crash, not a power loss.
	NoSync bool
	// DayEnd is when DAY orders expire, as an offset from 00:00 UTC.
	DayEnd      time.Duration
	RiskTimeout time.Duration
	QueueLimit  int
	Now         func() int64
	Logger      *slog.Logger
	// Fail is called when the journal fails: the process must stop (fail-stop).
	Fail func(error)
	// Owner names this matching service to risk: its reservations and settlement streams are
	// (Owner, shard). Default "matching".
	Owner string
	// ProbeEvery is how often risk's incarnation is checked while nothing else talks to it.
	ProbeEvery time.Duration
}

func (c *Config) defaults() {
	if c.Shards <= 0 {
		c.Shards = 1
	}
	if c.Retain <= 0 {
		c.Retain = 100_000
	}
	if c.IDWindow <= 0 {
		c.IDWindow = time.Hour
	}
	if c.IDCap <= 0 {
		c.IDCap = 250_000
	}
	if c.RiskTimeout <= 0 {
		c.RiskTimeout = 5 * time.Second
	}
	if c.QueueLimit <= 0 {
		c.QueueLimit = 1 << 16
	}
	if c.Now == nil {
		c.Now = func() int64 { return time.Now().UnixNano() }
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Fail == nil {
		c.Fail = func(error) {}
	}
	if c.Owner == "" {
		c.Owner = "matching"
	}
	if c.ProbeEvery <= 0 {
		c.ProbeEvery = time.Second
	}
}

// Exchange is the matching engine. Its methods are safe for concurrent use; answers arrive through
// callbacks (done), on goroutines of the exchange, which must not block.
type Exchange struct {
	cfg     Config
	log     *slog.Logger
	risk    Risk
	checker *checker
	shards  []*shard
	fills   fillHub

	addMu     sync.Mutex // serialises AddSymbol
	marketsMu sync.Mutex
	markets   atomic.Pointer[map[string]*market] // copy on write
	failed    atomic.Bool

	// Settlement with risk (reporter.go, resync.go): session identifies this process's checks;
	// riskInc is the last risk incarnation seen.
	session      uint64
	riskInc      atomic.Uint64
	riskIncKnown atomic.Bool
	resync       resyncer
}

// Open recovers every shard from its snapshot and journal and starts serving. In the background each
// shard's reporter re-sends the settlements risk may have missed, then re-syncs the open orders'
// reservations with risk (resync.go); orders checked meanwhile are safe (see the README).
func Open(ctx context.Context, cfg Config, risk Risk) (*Exchange, error) {
	cfg.defaults()
	x := &Exchange{cfg: cfg, log: cfg.Logger, risk: risk, checker: newChecker(risk, cfg.RiskTimeout), session: newSession(),
		resync: resyncer{wake: make(chan struct{}, 1), quit: make(chan struct{}), stopped: make(chan struct{})}}
	x.checker.owner, x.checker.session = cfg.Owner, x.session
	x.checker.onAnswer = x.noteIncarnation
	x.checker.onUnknown = func(err error) { x.requestResync("a risk check's outcome is unknown: " + err.Error()) }
	x.markets.Store(&map[string]*market{})
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, err
	}
	n := cfg.Shards
	for {
		if _, err := os.Stat(shardDir(cfg.DataDir, n)); err != nil {
			break
		}
		n++
	}
	opts := journal.Options{DeleteCoveredSegments: true}
	if cfg.NoSync {
		opts.Sync = journal.SyncNever
	}
	for i := range n {
		j, err := journal.Open(shardDir(cfg.DataDir, i), opts)
		if err != nil {
			x.closeJournals()
			return nil, err
		}
		sh := &shard{x: x, index: i, journal: j, wake: make(chan struct{}, 1), stopped: make(chan struct{}),
			snapshots: make(chan snapshotJob, 1), snapDone: make(chan struct{}),
			rep: newReporter(x, cfg.Logger.With("shard", i))}
		x.shards = append(x.shards, sh)
		start := time.Now()
		records, snap, err := sh.recover()
		if err != nil {
			x.closeJournals()
			return nil, fmt.Errorf("recover shard %d: %w", i, err)
		}
		epoch, err := shardEpoch(shardDir(cfg.DataDir, i), records == 0 && !snap)
		if err != nil {
			x.closeJournals()
			return nil, fmt.Errorf("shard %d: %w", i, err)
		}
		sh.rep.stream = Stream{Owner: cfg.Owner, Shard: uint32(i), Epoch: epoch}
		if records > 0 || len(sh.markets) > 0 {
			x.log.Info("shard recovered", "shard", i, "symbols", len(sh.markets), "replayed", records, "elapsed", time.Since(start))
		}
	}
	for _, sh := range x.shards {
		go sh.rep.run()
		go sh.writeSnapshots()
		go sh.run()
	}
	// The first round: nothing has been checked yet, so nothing is in flight to wait for.
	g := x.checker.bump()
	for _, sh := range x.shards {
		sh.syncPending.Store(true)
		if err := sh.enqueue(command{kind: cmdSync, sync: &syncCapture{generation: g, done: sh.syncDone}}); err != nil {
			x.closeJournals()
			return nil, err
		}
	}
	go x.runResync()
	return x, nil
}

func shardDir(root string, i int) string { return filepath.Join(root, fmt.Sprintf("shard-%03d", i)) }

func (x *Exchange) closeJournals() {
	for _, sh := range x.shards {
		sh.journal.Close()
	}
}

func (x *Exchange) fail(err error) {
	if x.failed.CompareAndSwap(false, true) {
		x.log.Error("matching failed", "err", err)
		x.cfg.Fail(err)
	}
}

// Close drains the shards, lets the reporters settle what they hold, and closes the journals.
func (x *Exchange) Close(ctx context.Context) error {
	close(x.resync.quit)
	<-x.resync.stopped
	for _, sh := range x.shards {
		sh.stop(ctx)
	}
	var errList []error
	for _, sh := range x.shards {
		if err := sh.rep.close(ctx); err != nil {
			errList = append(errList, fmt.Errorf("shard %d: risk settlement not drained: %w", sh.index, err))
		}
		close(sh.snapshots)
		<-sh.snapDone
		errList = append(errList, sh.journal.Close())
	}
	x.resync.uncovering.Wait() // the reporters have stopped: none starts any more
	return errors.Join(errList...)
}

func (x *Exchange) dayEnd(now int64) int64 {
	const day = int64(24 * time.Hour)
	offset := int64(x.cfg.DayEnd)
	end := (now-offset)/day*day + day + offset
	for end <= now {
		end += day
	}
	return end
}

func (x *Exchange) publishMarket(m *market) {
	x.marketsMu.Lock()
	defer x.marketsMu.Unlock()
	old := *x.markets.Load()
	next := make(map[string]*market, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[m.spec.Symbol] = m
	x.markets.Store(&next)
}

func (x *Exchange) market(symbol string) (*market, error) {
	if symbol == "" {
		return nil, errs.Invalid("symbol", "is required")
	}
	m := (*x.markets.Load())[symbol]
	if m == nil {
		return nil, errs.New(errs.KindNotFound, "symbol: unknown symbol %q", symbol)
	}
	return m, nil
}

// releaseNow frees a reservation whose order never reached the journal.
func (x *Exchange) releaseNow(id uint64) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), x.cfg.RiskTimeout)
		defer cancel()
		if err := x.risk.Release(ctx, []uint64{id}); err != nil {
			x.log.Warn("release of an unused reservation failed", "reservation", id, "err", err)
		}
	}()
}

// Symbols lists every symbol's spec, by name.
func (x *Exchange) Symbols() []Spec {
	ms := *x.markets.Load()
	out := make([]Spec, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.spec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Symbol < out[j].Symbol })
	return out
}

// Spec returns a symbol's rules, for parsing a request's decimals.
func (x *Exchange) Spec(symbol string) (*Spec, error) {
	m, err := x.market(symbol)
	if err != nil {
		return nil, err
	}
	return &m.spec, nil
}

// AddSymbol opens a book, after checking the symbol against the risk service. Adding an identical
// definition again is a no-op.
func (x *Exchange) AddSymbol(ctx context.Context, in SpecInput) (Spec, error) {
	if err := validSymbolName(in.Symbol); err != nil {
		return Spec{}, err
	}
	rs, err := x.risk.Symbol(ctx, in.Symbol)
	if err != nil {
		return Spec{}, err
	}
	spec, err := NewSpec(in, rs)
	if err != nil {
		return Spec{}, err
	}
	x.addMu.Lock()
	defer x.addMu.Unlock()
	if m := (*x.markets.Load())[spec.Symbol]; m != nil {
		if m.spec == spec {
			return spec, nil
		}
		return Spec{}, errs.New(errs.KindAlreadyExists, "symbol %q already exists with other rules", spec.Symbol)
	}
	// New symbols go to the configured shard with the fewest; markets is only written under addMu.
	sh := x.shards[0]
	for _, s := range x.shards[:min(x.cfg.Shards, len(x.shards))] {
		if s.marketCount.Load() < sh.marketCount.Load() {
			sh = s
		}
	}
	done := make(chan Result, 1)
	jc := journal.Command{Kind: journal.CommandAddSymbol, Symbol: spec.Symbol, Instrument: spec.Instrument(), Spec: spec.encode()}
	if err := sh.enqueue(command{kind: cmdAddSymbol, jc: jc, spec: spec, done: func(r Result) { done <- r }}); err != nil {
		return Spec{}, err
	}
	select {
	case res := <-done:
		return spec, res.Err
	case <-ctx.Done():
		return Spec{}, errs.Wrap(errs.KindUnavailable, ctx.Err(), "add symbol: no answer")
	}
}

// Submit enters an order; done receives the order after the command is durable, or a refusal.
func (x *Exchange) Submit(ctx context.Context, req OrderRequest, done func(Result)) {
	m, err := x.market(req.Symbol)
	if err != nil {
		done(Result{Err: err})
		return
	}
	if reason := m.shard.rep.haltReason(); reason != "" {
		done(Result{Err: haltedErr(m.spec.Symbol, reason)})
		return
	}
	if err := x.validate(m, &req); err != nil {
		done(Result{Err: err})
		return
	}
	key := clientKey(req.Account, req.ClientOrderID)
	m.mu.Lock()
	id, seen := m.clientIDs[key]
	if seen && id != 0 && m.expiredClient(id, x.cfg.Now()) {
		seen = false // closed before the window: the id is free again
	}
	if !seen {
		m.clientIDs[key] = 0
	}
	m.mu.Unlock()
	if seen {
		if id == 0 {
			done(Result{Err: errs.New(errs.KindAlreadyExists, "client_order_id: an order with this id is still being processed")})
			return
		}
		x.answerDuplicate(m, id, done)
		return
	}
	forget := func() {
		m.mu.Lock()
		if m.clientIDs[key] == 0 {
			delete(m.clientIDs, key)
		}
		m.mu.Unlock()
	}
	bookPrice, err := x.protectedPrice(m, &req)
	if err != nil {
		forget()
		done(Result{Err: err})
		return
	}
	if bookPrice == 0 && req.Type == TypeMarket {
		forget()
		done(Result{Order: rejected(&req, RejectNoLiquidity, "")})
		return
	}
	no := book.NewOrder{Side: req.Side, TIF: req.TIF, Price: bookPrice, TriggerPrice: req.TriggerPrice, Qty: req.Qty,
		DisplayQty: req.DisplayQty, PostOnly: req.PostOnly, STP: req.STP, ExpireAt: req.ExpireAt}
	switch req.Type {
	case TypeLimit:
		no.Type = book.Limit
	case TypeMarket:
		no.Type = book.Limit
		if no.TIF != book.FOK {
			no.TIF = book.IOC
		}
	case TypeStop:
		// The book's Stop keeps the TIF for the wait (GTD/DAY expire) and, once triggered, trades
		// to its protection price and cancels the rest like any market order.
		no.Type = book.Stop
	case TypeStopLimit:
		no.Type = book.StopLimit
	}
	check := RiskCheck{Spec: &m.spec, Shard: uint32(m.shard.index), Account: req.Account, Side: req.Side, Market: req.Type == TypeMarket || req.Type == TypeStop,
		Price: bookPrice, Qty: req.Qty, ReduceOnly: req.ReduceOnly}
	x.checker.submit(ctx, check, func(d RiskDecision, err error) {
		if err != nil {
			forget()
			done(Result{Err: err})
			return
		}
		if !d.Accepted {
			forget()
			done(Result{Order: rejected(&req, RejectRisk, d.Reason)})
			return
		}
		jc := journal.Command{Kind: journal.CommandSubmit, Symbol: m.spec.Symbol, ClientOrderID: req.ClientOrderID,
			AccountID: req.Account, ReservationID: d.ReservationID, Order: no, ClientType: uint8(req.Type)}
		if err := m.shard.enqueue(command{kind: cmdSubmit, m: m, jc: jc, trace: trace.SpanContextFromContext(ctx), done: done}); err != nil {
			forget()
			x.releaseNow(d.ReservationID)
			done(Result{Err: err})
		}
	})
}

func rejected(req *OrderRequest, reason RejectReason, riskReason string) Order {
	return Order{ClientOrderID: req.ClientOrderID, Account: req.Account, Symbol: req.Symbol, Side: req.Side, Type: req.Type,
		TIF: req.TIF, Price: req.Price, TriggerPrice: req.TriggerPrice, Qty: req.Qty, DisplayQty: req.DisplayQty,
		PostOnly: req.PostOnly, STP: req.STP, ExpireAt: req.ExpireAt, Status: StatusRejected, Reject: reason, RiskReject: riskReason}
}

// validate checks what the book cannot know: the combinations the API allows.
func (x *Exchange) validate(m *market, r *OrderRequest) error {
	switch {
	case r.Account == "":
		return errs.Invalid("account_id", "is required")
	case r.ClientOrderID == "" || len(r.ClientOrderID) > 64:
		return errs.Invalid("client_order_id", "must be 1 to 64 bytes")
	case strings.ContainsRune(r.ClientOrderID, 0):
		return errs.Invalid("client_order_id", "must not contain NUL")
	case r.Side != book.Buy && r.Side != book.Sell:
		return errs.Invalid("side", "must be SIDE_BUY or SIDE_SELL")
	case r.Qty <= 0:
		return errs.Invalid("quantity", "is required")
	case r.Qty < m.spec.MinLots || r.Qty > m.spec.MaxLots:
		return errs.Invalid("quantity", "must be between %s and %s", m.spec.FormatQty(m.spec.MinLots), m.spec.FormatQty(m.spec.MaxLots))
	case r.DisplayQty < 0 || r.DisplayQty > r.Qty:
		return errs.Invalid("display_quantity", "must not exceed quantity")
	}
	switch r.Type {
	case TypeLimit, TypeStopLimit:
		if r.Price == 0 {
			return errs.Invalid("price", "is required for a limit order")
		}
	case TypeMarket:
		if r.PostOnly {
			return errs.Invalid("post_only", "a market order cannot be post-only")
		}
		if r.DisplayQty > 0 {
			return errs.Invalid("display_quantity", "a market order cannot be an iceberg")
		}
		if r.TIF != book.IOC && r.TIF != book.FOK && r.TIF != book.GTC {
			return errs.Invalid("time_in_force", "a market order is IOC or FOK")
		}
	case TypeStop:
		if r.Price == 0 {
			return errs.Invalid("price", "a stop order needs a protection price: the worst price it may fill at once triggered")
		}
		if r.PostOnly || r.DisplayQty > 0 {
			return errs.Invalid("post_only", "a stop order cannot be post-only or an iceberg")
		}
	default:
		return errs.Invalid("type", "must be LIMIT, MARKET, STOP or STOP_LIMIT")
	}
	if (r.Type == TypeStop || r.Type == TypeStopLimit) && r.TriggerPrice == 0 {
		return errs.Invalid("trigger_price", "is required for stop orders")
	}
	if r.Type != TypeStop && r.Type != TypeStopLimit && r.TriggerPrice != 0 {
		return errs.Invalid("trigger_price", "only stop orders have a trigger price")
	}
	if r.PostOnly && (r.TIF == book.IOC || r.TIF == book.FOK) {
		return errs.Invalid("post_only", "cannot be combined with IOC or FOK")
	}
	if r.TIF == book.GTD {
		if r.ExpireAt <= x.cfg.Now() {
			return errs.Invalid("expire_time", "must be in the future for GTD")
		}
	} else if r.ExpireAt != 0 {
		return errs.Invalid("expire_time", "only GTD orders take an expire time")
	}
	return nil
}

// protectedPrice is the price the order enters the book (and the risk check) with: a market order
// without a price gets the best opposite price moved by the symbol's protection; 0 means there is
// no opposite side.
func (x *Exchange) protectedPrice(m *market, r *OrderRequest) (int64, error) {
	if r.Type != TypeMarket || r.Price != 0 {
		return r.Price, nil
	}
	var best int64
	if r.Side == book.Buy {
		best = m.bestAsk.Load()
	} else {
		best = m.bestBid.Load()
	}
	if best == 0 {
		return 0, nil
	}
	return m.spec.protection(r.Side, best), nil
}

func (x *Exchange) answerDuplicate(m *market, id uint64, done func(Result)) {
	err := m.shard.enqueue(command{kind: cmdQuery, query: func(out *output) {
		if o := m.orders[id]; o != nil {
			out.reply(done, Result{Order: *o, Duplicate: true})
		} else {
			out.reply(done, Result{Err: errs.New(errs.KindAlreadyExists, "client_order_id: used by order %d, closed within the id window; its record is no longer kept", id)})
		}
	}})
	if err != nil {
		done(Result{Err: err})
	}
}

// Cancel cancels an open order of ref.Account.
func (x *Exchange) Cancel(ref OrderRef, done func(Result)) {
	x.onOrder(context.Background(), cmdCancel, ref, AmendRequest{}, done)
}

// CancelTraced is Cancel on behalf of a traced request: the settlement of its release links to it.
func (x *Exchange) CancelTraced(ctx context.Context, ref OrderRef, done func(Result)) {
	x.onOrder(ctx, cmdCancel, ref, AmendRequest{}, done)
}

// Amend changes an open order of ref.Account.
func (x *Exchange) Amend(ctx context.Context, req AmendRequest, done func(Result)) {
	x.onOrder(ctx, cmdAmend, req.OrderRef, req, done)
}

// GetOrder reads an order of ref.Account, open or retained.
func (x *Exchange) GetOrder(ref OrderRef, done func(Result)) {
	m, err := x.refMarket(ref)
	if err != nil {
		done(Result{Err: err})
		return
	}
	err = m.shard.enqueue(command{kind: cmdQuery, query: func(out *output) {
		if o := m.lookup(ref); o != nil {
			out.reply(done, Result{Order: *o})
		} else {
			out.reply(done, Result{Err: errs.New(errs.KindNotFound, "order not found")})
		}
	}})
	if err != nil {
		done(Result{Err: err})
	}
}

func (x *Exchange) refMarket(ref OrderRef) (*market, error) {
	if ref.Account == "" {
		return nil, errs.Invalid("account_id", "is required")
	}
	if (ref.OrderID == 0) == (ref.ClientOrderID == "") {
		return nil, errs.Invalid("order_id", "give exactly one of order_id and client_order_id")
	}
	return x.market(ref.Symbol)
}

func (x *Exchange) onOrder(ctx context.Context, kind cmdKind, ref OrderRef, amend AmendRequest, done func(Result)) {
	m, err := x.refMarket(ref)
	if err != nil {
		done(Result{Err: err})
		return
	}
	if kind == cmdAmend && amend.Price == 0 && amend.Qty == 0 && amend.TriggerPrice == 0 {
		done(Result{Err: errs.Invalid("price", "give at least one of price, quantity and trigger_price")})
		return
	}
	if reason := m.shard.rep.haltReason(); kind == cmdAmend && reason != "" {
		done(Result{Err: haltedErr(m.spec.Symbol, reason)})
		return
	}
	if err := m.shard.enqueue(command{kind: kind, m: m, ref: ref, amend: amend, trace: trace.SpanContextFromContext(ctx), done: done}); err != nil {
		done(Result{Err: err})
	}
}

// CancelAll cancels every open order of account, in symbol or (symbol empty) everywhere, and
// answers with how many were cancelled.
func (x *Exchange) CancelAll(account, symbol string, done func(Result)) {
	if account == "" {
		done(Result{Err: errs.Invalid("account_id", "is required")})
		return
	}
	var targets []*market
	if symbol != "" {
		m, err := x.market(symbol)
		if err != nil {
			done(Result{Err: err})
			return
		}
		targets = []*market{m}
	} else {
		for _, m := range *x.markets.Load() {
			targets = append(targets, m)
		}
	}
	if len(targets) == 0 {
		done(Result{})
		return
	}
	var mu sync.Mutex
	total, left := 0, len(targets)
	var firstErr error
	for _, m := range targets {
		err := m.shard.enqueue(command{kind: cmdCancelAll, m: m, ref: OrderRef{Account: account}, done: func(r Result) {
			mu.Lock()
			total += r.Cancelled
			if r.Err != nil && firstErr == nil {
				firstErr = r.Err
			}
			left--
			last := left == 0
			mu.Unlock()
			if last {
				done(Result{Cancelled: total, Err: firstErr})
			}
		}})
		if err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			left--
			last := left == 0
			mu.Unlock()
			if last {
				done(Result{Cancelled: total, Err: firstErr})
			}
		}
	}
}

// Book answers a view of a book with depth levels per side (and L3 orders when asked).
func (x *Exchange) Book(symbol string, depth int, orders bool, done func(*BookView, error)) {
	m, err := x.market(symbol)
	if err != nil {
		done(nil, err)
		return
	}
	err = m.shard.enqueue(command{kind: cmdQuery, query: func(out *output) {
		v := m.view(depth, orders)
		out.reply(func(Result) { done(v, nil) }, Result{})
	}})
	if err != nil {
		done(nil, err)
	}
}

// FollowFills opens a stream of fills of resting orders for the accounts it follows.
func (x *Exchange) FollowFills(buffer int) *FillStream { return x.fills.open(buffer) }

// State returns the canonical serialized state of every market (for tests: a replayed exchange
// must produce the same bytes as the live one).
func (x *Exchange) State() ([]byte, error) {
	var all []byte
	for _, sh := range x.shards {
		done := make(chan []byte, 1)
		errc := make(chan error, 1)
		err := sh.enqueue(command{kind: cmdQuery, query: func(*output) {
			b, err := sh.encodeState()
			if err != nil {
				errc <- err
				return
			}
			done <- b
		}})
		if err != nil {
			return nil, err
		}
		select {
		case b := <-done:
			all = append(all, b...)
		case err := <-errc:
			return nil, err
		}
	}
	return all, nil
}
