package matching_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shopspring/decimal"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
)

// chaosLoad is the randomized client load: unary workers and StreamOrders workers sending crossing
// limit orders, market orders, cancels and amends through matching, plus credits and debits through
// risk. Each worker has its own generator seeded from the run's seed, so the sequence of commands
// is reproducible (their interleaving with each other and with the crashes is not).
//
// The test goroutine owns a chaosLoad: run starts the workers, stop cancels them and waits; a
// worker may block only on RPCs, each bounded by a deadline.
type chaosLoad struct {
	cluster  *chaosCluster
	ledger   *chaosLedger
	accounts []string
	seed     uint64
	workers  int
	streams  int // how many of the workers use StreamOrders
	round    int

	cancel context.CancelFunc
	wg     sync.WaitGroup
	// aborted ends even the transfers' retries: the test failed and the processes are going away.
	aborted atomic.Bool

	mu     sync.Mutex
	broken []string // transfers whose outcome the ledger cannot know
}

func (l *chaosLoad) unresolved(what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.broken = append(l.broken, what)
}

func (l *chaosLoad) unresolvedTransfers() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.broken...)
}

// run starts the workers for one load phase.
func (l *chaosLoad) run() {
	l.round++
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	for w := range l.workers {
		l.wg.Add(1)
		wk := &chaosWorker{load: l, id: w, stream: w < l.streams,
			rng: rand.New(rand.NewPCG(l.seed, uint64(l.round)<<16|uint64(w)))}
		go func() {
			defer l.wg.Done()
			wk.loop(ctx)
		}()
	}
}

// stop ends the phase: no new commands; credits and debits in flight are retried to an answer so
// the ledger knows every confirmed transfer. Orders in flight may be left unanswered: they are in
// the ledger as attempted and looked up after recovery.
func (l *chaosLoad) stop() {
	if l.cancel != nil {
		l.cancel()
		l.cancel = nil
	}
	l.wg.Wait()
}

// abort stops the workers without waiting for transfers to resolve; for the end of a failed test.
func (l *chaosLoad) abort() {
	l.aborted.Store(true)
	l.stop()
}

type chaosWorker struct {
	load   *chaosLoad
	id     int
	stream bool
	rng    *rand.Rand
	seq    int
	open   []chaosRef // orders this worker believes open, to cancel and amend
}

type chaosRef struct{ account, symbol, cid string }

// chaosCommand is one order command, sent unary or on a stream.
type chaosCommand struct {
	submit *matchingv1.SubmitOrderRequest
	cancel *matchingv1.CancelOrderRequest
	amend  *matchingv1.AmendOrderRequest
}

func (c chaosCommand) kind() string {
	switch {
	case c.submit != nil:
		return "submit"
	case c.cancel != nil:
		return "cancel"
	default:
		return "amend"
	}
}

func (w *chaosWorker) loop(ctx context.Context) {
	for ctx.Err() == nil {
		switch r := w.rng.Float64(); {
		case r < 0.05:
			w.transfer(false)
		case r < 0.07:
			w.transfer(true)
		default:
			n := 1
			if w.stream {
				n = 1 + w.rng.IntN(6)
			}
			cmds := make([]chaosCommand, 0, n)
			for range n {
				cmds = append(cmds, w.command())
			}
			if w.stream {
				w.sendStream(ctx, cmds)
			} else {
				w.sendUnary(ctx, cmds[0])
			}
		}
		// Pace the load so that a check can look up every order of a long run.
		time.Sleep(time.Duration(w.rng.IntN(15)) * time.Millisecond)
	}
}

// command draws the next order command: mostly limit orders near the mid, many of which cross, some
// market orders, and cancels and amends of this worker's open orders.
func (w *chaosWorker) command() chaosCommand {
	r := w.rng.Float64()
	if len(w.open) > 0 && r < 0.35 {
		i := w.rng.IntN(len(w.open))
		ref := w.open[i]
		if r < 0.2 {
			w.open = append(w.open[:i], w.open[i+1:]...)
			return chaosCommand{cancel: &matchingv1.CancelOrderRequest{AccountId: ref.account, Symbol: ref.symbol, ClientOrderId: ref.cid}}
		}
		sym := symbolByName(ref.symbol)
		am := &matchingv1.AmendOrderRequest{AccountId: ref.account, Symbol: ref.symbol, ClientOrderId: ref.cid}
		rec, _ := w.load.ledger.order(ref.account, ref.symbol, ref.cid)
		if w.rng.IntN(2) == 0 || rec.quantity.IsZero() {
			am.Price = w.price(sym, rec.side).String()
		} else {
			// New total quantity, fills included: down keeps priority, up goes to the back.
			lots := rec.quantity.Div(sym.lot).IntPart() + int64(w.rng.IntN(9)) - 4
			am.Quantity = sym.lot.Mul(decimal.NewFromInt(max(1, lots))).String()
		}
		return chaosCommand{amend: am}
	}
	sym := chaosSymbols[w.rng.IntN(len(chaosSymbols))]
	side := matchingv1.Side_SIDE_BUY
	if w.rng.IntN(2) == 0 {
		side = matchingv1.Side_SIDE_SELL
	}
	w.seq++
	req := &matchingv1.SubmitOrderRequest{
		AccountId: w.load.accounts[w.rng.IntN(len(w.load.accounts))], Symbol: sym.name,
		ClientOrderId: fmt.Sprintf("r%d-w%d-%d", w.load.round, w.id, w.seq), Side: side,
		Quantity: sym.lot.Mul(decimal.NewFromInt(int64(1 + w.rng.IntN(20)))).String(),
	}
	if w.rng.IntN(100) < 15 {
		req.Type = matchingv1.OrderType_ORDER_TYPE_MARKET
		req.Quantity = sym.lot.Mul(decimal.NewFromInt(int64(1 + w.rng.IntN(8)))).String()
	} else {
		req.Type = matchingv1.OrderType_ORDER_TYPE_LIMIT
		req.Price = w.price(sym, side).String()
	}
	return chaosCommand{submit: req}
}

// price is a limit price up to 6 ticks on either side of the mid, biased to the passive side so the
// book keeps depth and about one order in three crosses.
func (w *chaosWorker) price(sym chaosSymbol, side matchingv1.Side) decimal.Decimal {
	k := int64(w.rng.IntN(10)) - 6 // -6..3 ticks
	if side == matchingv1.Side_SIDE_SELL {
		k = -k
	}
	return sym.mid.Add(sym.tick.Mul(decimal.NewFromInt(k)))
}

// retryable are the answers a real client retries with the same client_order_id: the service was
// not there, or did not answer in time.
func retryable(err error) bool {
	c := status.Code(err)
	return c == codes.Unavailable || c == codes.DeadlineExceeded
}

func backoff(attempt int) time.Duration {
	return min(time.Duration(20<<min(attempt, 5))*time.Millisecond, 500*time.Millisecond)
}

func (w *chaosWorker) sendUnary(ctx context.Context, cmd chaosCommand) {
	l := w.load.ledger
	if cmd.submit != nil {
		l.attempt(cmd.submit)
	}
	for attempt := 0; ctx.Err() == nil; attempt++ {
		mc := w.load.cluster.current().matching
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var order *matchingv1.Order
		var dup bool
		var err error
		switch {
		case cmd.submit != nil:
			var resp *matchingv1.SubmitOrderResponse
			if resp, err = mc.SubmitOrder(actx, cmd.submit); err == nil {
				order, dup = resp.GetOrder(), resp.GetDuplicate()
			}
		case cmd.cancel != nil:
			var resp *matchingv1.CancelOrderResponse
			if resp, err = mc.CancelOrder(actx, cmd.cancel); err == nil {
				order = resp.GetOrder()
			}
		default:
			var resp *matchingv1.AmendOrderResponse
			if resp, err = mc.AmendOrder(actx, cmd.amend); err == nil {
				order = resp.GetOrder()
			}
		}
		cancel()
		if err == nil {
			w.answered(cmd, order, dup)
			return
		}
		if ctx.Err() != nil || !retryable(err) {
			l.failed(cmd.kind(), status.Code(err))
			return
		}
		l.count(cmd.kind() + " retries")
		time.Sleep(backoff(attempt))
	}
}

// sendStream sends the commands on a fresh StreamOrders stream and reads until each is answered; a
// broken stream is reopened on the current matching and the unanswered commands are sent again
// with the same client_order_ids.
func (w *chaosWorker) sendStream(ctx context.Context, cmds []chaosCommand) {
	l := w.load.ledger
	pending := map[uint64]chaosCommand{}
	for i, cmd := range cmds {
		if cmd.submit != nil {
			l.attempt(cmd.submit)
		}
		pending[uint64(i+1)] = cmd
	}
	for attempt := 0; len(pending) > 0 && ctx.Err() == nil; attempt++ {
		if attempt > 0 {
			l.count("stream resends")
			time.Sleep(backoff(attempt))
		}
		w.streamOnce(ctx, pending)
	}
}

func (w *chaosWorker) streamOnce(ctx context.Context, pending map[uint64]chaosCommand) {
	l := w.load.ledger
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stream, err := w.load.cluster.current().matching.StreamOrders(sctx)
	if err != nil {
		return
	}
	msg := &matchingv1.StreamOrdersRequest{}
	for _, id := range slices.Sorted(maps.Keys(pending)) {
		cmd := pending[id]
		oc := &matchingv1.OrderCommand{RequestId: id}
		switch {
		case cmd.submit != nil:
			oc.Command = &matchingv1.OrderCommand_Submit{Submit: cmd.submit}
		case cmd.cancel != nil:
			oc.Command = &matchingv1.OrderCommand_Cancel{Cancel: cmd.cancel}
		default:
			oc.Command = &matchingv1.OrderCommand_Amend{Amend: cmd.amend}
		}
		msg.Commands = append(msg.Commands, oc)
	}
	if err := stream.Send(msg); err != nil {
		return
	}
	for len(pending) > 0 {
		resp, err := stream.Recv()
		if err != nil {
			return
		}
		for _, u := range resp.GetUpdates() {
			cmd, ok := pending[u.GetRequestId()]
			if !ok {
				continue // fills of resting orders (request id 0)
			}
			if code := codes.Code(u.GetErrorCode()); code != codes.OK {
				if code == codes.Unavailable || code == codes.DeadlineExceeded {
					continue // sent again on the next stream
				}
				l.failed("stream "+cmd.kind(), code)
				delete(pending, u.GetRequestId())
				continue
			}
			w.answered(cmd, u.GetOrder(), u.GetDuplicate())
			delete(pending, u.GetRequestId())
		}
	}
	_ = stream.CloseSend()
}

func (w *chaosWorker) answered(cmd chaosCommand, order *matchingv1.Order, dup bool) {
	open := w.load.ledger.answered(cmd.kind(), order, dup)
	ref := chaosRef{order.GetAccountId(), order.GetSymbol(), order.GetClientOrderId()}
	switch {
	case open && cmd.submit != nil:
		w.open = append(w.open, ref)
	case !open:
		w.open = slices.DeleteFunc(w.open, func(r chaosRef) bool { return r == ref })
	}
	if len(w.open) > 64 {
		w.open = w.open[len(w.open)-64:]
	}
}

// transfer credits or debits a small random amount, retrying with the same ref until risk gives a
// definite answer: the ledger must know every transfer risk confirmed. It does not stop with the
// load phase, only at its own deadline.
func (w *chaosWorker) transfer(credit bool) {
	l := w.load.ledger
	acct := w.load.accounts[w.rng.IntN(len(w.load.accounts))]
	asset := chaosAssets[w.rng.IntN(len(chaosAssets))]
	amount := chaosFunding[asset].Mul(decimal.NewFromInt(int64(1 + w.rng.IntN(20)))).Div(decimal.NewFromInt(1000)).Round(assetScale)
	w.seq++
	ref := fmt.Sprintf("r%d-w%d-%d", w.load.round, w.id, w.seq)
	rpc := "debit"
	if credit {
		rpc = "credit"
	}
	deadline := time.Now().Add(2 * time.Minute)
	for attempt := 0; ; attempt++ {
		rc := w.load.cluster.current().risk
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var err error
		if credit {
			_, err = rc.Credit(ctx, &riskv1.CreditRequest{AccountId: acct, AssetId: asset, Amount: amount.String(), Ref: "cr-" + ref})
		} else {
			_, err = rc.Debit(ctx, &riskv1.DebitRequest{AccountId: acct, AssetId: asset, Amount: amount.String(), Ref: "db-" + ref})
		}
		cancel()
		switch {
		case err == nil:
			l.transferred(asset, amount, credit)
			return
		case !retryable(err):
			l.failed(rpc, status.Code(err)) // refused (insufficient funds): nothing moved
			return
		case w.load.aborted.Load():
			return
		case time.Now().After(deadline):
			// The ledger can no longer know whether it moved; the check reports the run as broken.
			l.count(rpc + " unresolved")
			w.load.unresolved(fmt.Sprintf("%s %s of %s %s (ref %s): no definite answer from risk in 2m: %v", rpc, amount, acct, asset, ref, err))
			return
		}
		l.count(rpc + " retries")
		time.Sleep(backoff(attempt))
	}
}
