package payment_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	paymentv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/payment/v1"
)

// The chaos load: workers that behave as real clients. Every creating call carries an idempotency
// key, and after any error that does not prove the request was refused the worker sends the very same
// request again (same key, same parameters) until it gets an answer or the load's hard deadline. What
// each key was answered is written in the book, which the checks compare with what the services hold.

const (
	chaosCallTimeout = 5 * time.Second
	// chaosGrace is how long after stop the workers may keep retrying the request they are in, so that
	// a request sent just before a crash is usually answered, yet the load always ends.
	chaosGrace = 20 * time.Second
)

type keyKind string

const (
	kindDeposit keyKind = "deposit"
	kindCapture keyKind = "capture"
	kindCancel  keyKind = "cancel"
	kindRefund  keyKind = "refund"
	kindPayout  keyKind = "payout"
)

// keyRecord is what the client knows of one idempotency key.
type keyRecord struct {
	kind    keyKind
	account string
	key     string
	id      string // the object an OK answer named (the payment for capture and cancel)
	status  string // the status in the first OK answer
	replay  func(ctx context.Context, p *paymentProc) (string, bool, error)
}

type chaosBook struct {
	mu         sync.Mutex
	keys       map[string]*keyRecord
	refundable map[string][]string // per account: payments acknowledged as captured
	violations []string
	retried    map[codes.Code]int
	acked      map[keyKind]int
	gaveUp     map[keyKind]int
	refused    map[keyKind]int
	replays    int
}

func newChaosBook() *chaosBook {
	return &chaosBook{keys: map[string]*keyRecord{}, refundable: map[string][]string{}, retried: map[codes.Code]int{},
		acked: map[keyKind]int{}, gaveUp: map[keyKind]int{}, refused: map[keyKind]int{}}
}

func (b *chaosBook) violate(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.violations = append(b.violations, fmt.Sprintf(format, args...))
}

// keyCounts is how many keys of each kind and account the clients sent, and how many were answered OK.
func (b *chaosBook) keyCounts() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	sent, acked := map[string]int{}, map[string]int{}
	for _, r := range b.keys {
		k := r.account + "/" + string(r.kind)
		sent[k]++
		if r.id != "" {
			acked[k]++
		}
	}
	return fmt.Sprintf("keys sent %v, answered OK %v", sent, acked)
}

func (b *chaosBook) summary() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var retried []string
	for c, n := range b.retried {
		retried = append(retried, fmt.Sprintf("%v:%d", c, n))
	}
	sort.Strings(retried)
	return fmt.Sprintf("%d keys; acknowledged %v; refused %v; gave up %v; %d replays checked; retried after %s",
		len(b.keys), b.acked, b.refused, b.gaveUp, b.replays, strings.Join(retried, " "))
}

type chaosLoad struct {
	stack   *chaosStack
	book    *chaosBook
	seed    uint64
	workers int

	stopping chan struct{}      // closed by stop: no new request starts
	hard     context.Context    // ends chaosGrace after stop: retries end
	cancel   context.CancelFunc // of hard
	wg       sync.WaitGroup
}

// start runs the workers; the test goroutine owns them and ends them with stop.
func (l *chaosLoad) start() {
	l.stopping = make(chan struct{})
	l.hard, l.cancel = context.WithCancel(context.Background())
	for w := range l.workers {
		rng := rand.New(rand.NewPCG(l.seed, uint64(w)+1))
		account := chaosAccounts[w%len(chaosAccounts)]
		l.wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-l.stopping:
					return
				default:
				}
				l.step(rng, account, fmt.Sprintf("w%d-%d", w, n))
			}
		})
	}
}

// stop lets the workers finish the request they are in (retrying it for at most chaosGrace) and waits
// for them.
func (l *chaosLoad) stop() {
	close(l.stopping)
	t := time.AfterFunc(chaosGrace, l.cancel)
	l.wg.Wait()
	t.Stop()
	l.cancel()
}

func (l *chaosLoad) step(rng *rand.Rand, account, key string) {
	switch r := rng.IntN(100); {
	case r < 35:
		l.deposit(rng, account, key, false)
	case r < 50:
		l.deposit(rng, account, key, true)
	case r < 70:
		l.refund(rng, account, key)
	case r < 90:
		l.payout(rng, account, key)
	default:
		l.replayOne(rng, account)
	}
	time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
}

func clientOf(p *paymentProc, account string) paymentv1.PaymentServiceClient {
	if account == "bob" {
		return p.bob
	}
	return p.alice
}

// send runs do until it answers OK or a refusal, retrying every other error with the same request.
// It reports whether the request was acknowledged.
func (l *chaosLoad) send(rec *keyRecord, do func(ctx context.Context, p *paymentProc) (id, st string, err error)) bool {
	l.book.mu.Lock()
	l.book.keys[rec.key] = rec
	l.book.mu.Unlock()
	for {
		ctx, cancel := context.WithTimeout(l.hard, chaosCallTimeout)
		id, st, err := do(ctx, l.stack.pay())
		cancel()
		code := status.Code(err)
		b := l.book
		switch {
		case err == nil:
			b.mu.Lock()
			defer b.mu.Unlock()
			rec.id, rec.status = id, st
			b.acked[rec.kind]++
			return true
		case code == codes.FailedPrecondition || code == codes.NotFound:
			// Refused before it began (nothing left to refund, not capturable, ...): nothing was written.
			b.mu.Lock()
			b.refused[rec.kind]++
			b.mu.Unlock()
			return false
		case code == codes.InvalidArgument || code == codes.PermissionDenied || code == codes.Unauthenticated:
			b.violate("%s %s: %v (the request is valid and the caller's own)", rec.kind, rec.key, err)
			return false
		case code == codes.Internal || code == codes.Unknown:
			// Retried all the same, but a crash (the database's among them) is no internal error: a
			// client must be told to retry (Unavailable, Aborted), never that the service is broken.
			b.violate("%s %s: %v (a crash must answer a retryable code)", rec.kind, rec.key, err)
		}
		b.mu.Lock()
		b.retried[code]++
		b.mu.Unlock()
		select {
		case <-l.hard.Done():
			b.mu.Lock()
			b.gaveUp[rec.kind]++
			b.mu.Unlock()
			return false
		case <-time.After(50*time.Millisecond + time.Duration(rand.IntN(150))*time.Millisecond):
		}
	}
}

func (l *chaosLoad) deposit(rng *rand.Rand, account, key string, manual bool) {
	in := deposit(account, 1000+rng.Int64N(19000), key)
	in.Metadata = map[string]string{"chaos_key": key}
	if rng.IntN(10) == 0 {
		in.PaymentToken = "tok_decline"
	}
	if manual {
		in.CaptureMethod = paymentv1.CaptureMethod_CAPTURE_METHOD_MANUAL
	}
	rec := &keyRecord{kind: kindDeposit, account: account, key: key}
	do := func(ctx context.Context, p *paymentProc) (string, string, error) {
		r, err := clientOf(p, account).CreatePayment(ctx, in)
		return r.GetPayment().GetPaymentId(), r.GetPayment().GetStatus().String(), err
	}
	rec.replay = func(ctx context.Context, p *paymentProc) (string, bool, error) {
		r, err := clientOf(p, account).CreatePayment(ctx, in)
		return r.GetPayment().GetPaymentId(), r.GetReplayed(), err
	}
	if !l.send(rec, do) {
		return
	}
	st := rec.status
	if !manual {
		if st == paymentv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED.String() {
			l.addRefundable(account, rec.id)
		}
		return
	}
	// Manual capture: wait for the authorization (an UNKNOWN one is settled by the janitor), then
	// capture all or part of it, or cancel it.
	for i := 0; st == paymentv1.PaymentStatus_PAYMENT_STATUS_PROCESSING.String() && i < 30; i++ {
		time.Sleep(200 * time.Millisecond)
		ctx, cancel := context.WithTimeout(l.hard, chaosCallTimeout)
		g, err := clientOf(l.stack.pay(), account).GetPayment(ctx, &paymentv1.GetPaymentRequest{PaymentId: rec.id})
		cancel()
		if err == nil {
			st = g.GetPayment().GetStatus().String()
		}
	}
	if st != paymentv1.PaymentStatus_PAYMENT_STATUS_REQUIRES_CAPTURE.String() {
		return
	}
	if rng.IntN(10) < 6 {
		capture := &paymentv1.CapturePaymentRequest{PaymentId: rec.id, IdempotencyKey: key + "-capture"}
		if rng.IntN(2) == 0 {
			capture.AmountToCapture = 1 + rng.Int64N(in.GetAmount().GetAmount())
		}
		crec := &keyRecord{kind: kindCapture, account: account, key: capture.IdempotencyKey}
		crec.replay = func(ctx context.Context, p *paymentProc) (string, bool, error) {
			r, err := clientOf(p, account).CapturePayment(ctx, capture)
			return r.GetPayment().GetPaymentId(), r.GetReplayed(), err
		}
		if l.send(crec, func(ctx context.Context, p *paymentProc) (string, string, error) {
			r, err := clientOf(p, account).CapturePayment(ctx, capture)
			return r.GetPayment().GetPaymentId(), r.GetPayment().GetStatus().String(), err
		}) && crec.status == paymentv1.PaymentStatus_PAYMENT_STATUS_SUCCEEDED.String() {
			l.addRefundable(account, rec.id)
		}
		return
	}
	cancelReq := &paymentv1.CancelPaymentRequest{PaymentId: rec.id, IdempotencyKey: key + "-cancel"}
	crec := &keyRecord{kind: kindCancel, account: account, key: cancelReq.IdempotencyKey}
	crec.replay = func(ctx context.Context, p *paymentProc) (string, bool, error) {
		r, err := clientOf(p, account).CancelPayment(ctx, cancelReq)
		return r.GetPayment().GetPaymentId(), r.GetReplayed(), err
	}
	l.send(crec, func(ctx context.Context, p *paymentProc) (string, string, error) {
		r, err := clientOf(p, account).CancelPayment(ctx, cancelReq)
		return r.GetPayment().GetPaymentId(), r.GetPayment().GetStatus().String(), err
	})
}

func (l *chaosLoad) addRefundable(account, id string) {
	l.book.mu.Lock()
	defer l.book.mu.Unlock()
	l.book.refundable[account] = append(l.book.refundable[account], id)
}

// refund refunds part or all of an acknowledged capture; a third of the time two or three refunds of
// one payment race, each with its own key.
func (l *chaosLoad) refund(rng *rand.Rand, account, key string) {
	l.book.mu.Lock()
	ids := l.book.refundable[account]
	var id string
	if len(ids) > 0 {
		id = ids[rng.IntN(len(ids))]
	}
	l.book.mu.Unlock()
	if id == "" {
		return
	}
	n := 1
	if rng.IntN(3) == 0 {
		n = 2 + rng.IntN(2)
	}
	var wg sync.WaitGroup
	for i := range n {
		in := &paymentv1.RefundPaymentRequest{PaymentId: id, IdempotencyKey: fmt.Sprintf("%s-r%d", key, i)}
		in.Reason = in.IdempotencyKey
		if rng.IntN(3) > 0 {
			in.Amount = 100 + rng.Int64N(3000) // may exceed what is left: FailedPrecondition
		}
		rec := &keyRecord{kind: kindRefund, account: account, key: in.IdempotencyKey}
		rec.replay = func(ctx context.Context, p *paymentProc) (string, bool, error) {
			r, err := clientOf(p, account).RefundPayment(ctx, in)
			return r.GetRefund().GetRefundId(), r.GetReplayed(), err
		}
		wg.Go(func() {
			l.send(rec, func(ctx context.Context, p *paymentProc) (string, string, error) {
				r, err := clientOf(p, account).RefundPayment(ctx, in)
				return r.GetRefund().GetRefundId(), r.GetRefund().GetStatus().String(), err
			})
		})
	}
	wg.Wait()
}

// payout withdraws to a good or a declining destination; one in twenty asks for more than any
// balance (risk refuses the debit).
func (l *chaosLoad) payout(rng *rand.Rand, account, key string) {
	in := &paymentv1.CreatePayoutRequest{AccountId: account, Amount: usd(500 + rng.Int64N(7500)), Destination: "ba_ok",
		IdempotencyKey: key, Metadata: map[string]string{"chaos_key": key}}
	if rng.IntN(5) == 0 {
		in.Destination = "ba_bad"
	}
	if rng.IntN(20) == 0 {
		in.Amount = usd(100_000_000)
	}
	rec := &keyRecord{kind: kindPayout, account: account, key: key}
	rec.replay = func(ctx context.Context, p *paymentProc) (string, bool, error) {
		r, err := clientOf(p, account).CreatePayout(ctx, in)
		return r.GetPayout().GetPayoutId(), r.GetReplayed(), err
	}
	l.send(rec, func(ctx context.Context, p *paymentProc) (string, string, error) {
		r, err := clientOf(p, account).CreatePayout(ctx, in)
		return r.GetPayout().GetPayoutId(), r.GetPayout().GetStatus().String(), err
	})
}

// replayOne sends an acknowledged request of the account again, as a client that never saw its
// answer would: it must answer the same object, as a replay (or Aborted while it is in flight).
func (l *chaosLoad) replayOne(rng *rand.Rand, account string) {
	l.book.mu.Lock()
	var recs []*keyRecord
	for _, r := range l.book.keys {
		if r.account == account && r.id != "" {
			recs = append(recs, r)
		}
	}
	l.book.mu.Unlock()
	if len(recs) == 0 {
		return
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].key < recs[j].key })
	rec := recs[rng.IntN(len(recs))]
	ctx, cancel := context.WithTimeout(l.hard, chaosCallTimeout)
	defer cancel()
	id, replayed, err := rec.replay(ctx, l.stack.pay())
	switch code := status.Code(err); {
	case err == nil:
		l.book.mu.Lock()
		l.book.replays++
		l.book.mu.Unlock()
		if id != rec.id || !replayed {
			l.book.violate("%s %s replayed as %s (replayed=%v), first answered %s", rec.kind, rec.key, id, replayed, rec.id)
		}
	case code == codes.InvalidArgument || code == codes.PermissionDenied || code == codes.NotFound || code == codes.FailedPrecondition ||
		code == codes.Internal || code == codes.Unknown:
		l.book.violate("%s %s: the replay of an acknowledged request answered %v", rec.kind, rec.key, err)
	}
}
