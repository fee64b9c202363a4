package flows

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/pkg/fraud"
	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/ledger"
	"github.com/bourse-dev/bourse/services/payment/internal/processor"
	"github.com/bourse-dev/bourse/services/payment/internal/processor/instant"
	"github.com/bourse-dev/bourse/services/payment/internal/store"
)

// fakeRisk behaves like risk's Credit and Debit on the points the flows rely on: a ref is applied
// once (a repeat changes nothing and succeeds), a debit over the balance is FailedPrecondition, and
// down makes every call fail without an answer.
type fakeRisk struct {
	mu      sync.Mutex
	balance map[string]int64 // account → minor units (tests use USD only)
	refs    map[string]bool
	applied int
	down    bool
}

func newFakeRisk() *fakeRisk { return &fakeRisk{balance: map[string]int64{}, refs: map[string]bool{}} }

func minor(amount string) int64 {
	var whole, frac int64
	seenDot := false
	for _, c := range amount {
		switch {
		case c == '.':
			seenDot = true
		case seenDot:
			frac = frac*10 + int64(c-'0')
		default:
			whole = whole*10 + int64(c-'0')
		}
	}
	return whole*100 + frac
}

func (r *fakeRisk) move(account, amount, ref string, sign int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		return errs.New(errs.KindUnavailable, "risk down")
	}
	if r.refs[account+"/"+ref] {
		return nil
	}
	a := minor(amount) * sign
	if r.balance[account]+a < 0 {
		return errs.New(errs.KindFailedPrecondition, "insufficient available balance")
	}
	r.refs[account+"/"+ref] = true
	r.balance[account] += a
	r.applied++
	return nil
}

func (r *fakeRisk) Credit(_ context.Context, account, _, amount, ref string) error {
	return r.move(account, amount, ref, 1)
}
func (r *fakeRisk) Debit(_ context.Context, account, _, amount, ref string) error {
	return r.move(account, amount, ref, -1)
}

func (r *fakeRisk) get(account string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.balance[account]
}

type env struct {
	svc  *Service
	st   *store.Store
	proc *instant.Processor
	risk *fakeRisk
	now  time.Time
	mu   sync.Mutex
}

func (e *env) clock() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now }
func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

func newEnv(t testing.TB, procs ...*instant.Processor) *env {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "payment.db"))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{st: st, risk: newFakeRisk(), now: time.Now()}
	st.SetClock(e.clock)
	if len(procs) == 0 {
		procs = []*instant.Processor{instant.New("instant", instant.WithDeclines(instant.Decline{Token: "tok_decline", Code: "insufficient_funds"}))}
	}
	e.proc = procs[0]
	var route Static
	for _, p := range procs {
		route = append(route, p)
	}
	e.svc = New(Config{Store: st, Router: route, Risk: e.risk, ProcessorTimeout: time.Second, SettleAfter: 5 * time.Second})
	t.Cleanup(func() {
		if err := st.CheckInvariants(context.Background()); err != nil {
			t.Error(err)
		}
		st.Close()
	})
	return e
}

func deposit(amount int64, token string) PaymentInput {
	return PaymentInput{AccountID: "alice", Amount: domain.Money{Amount: amount, Currency: "USD"}, Method: domain.MethodCard,
		PaymentToken: token, CaptureMethod: domain.CaptureAutomatic}
}

func balance(t testing.TB, st *store.Store, account string) int64 {
	t.Helper()
	bs, err := st.Balances(context.Background(), account, "USD")
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) == 0 {
		return 0
	}
	return bs[0].Amount
}

func TestDepositCreditsRiskOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p, replayed, err := e.svc.CreatePayment(ctx, "account:alice", "k1", deposit(1250, "tok_ok"))
	if err != nil || replayed || p.Status != domain.PaymentSucceeded || p.Captured != 1250 {
		t.Fatalf("payment %+v, replayed %v, %v", p, replayed, err)
	}
	if got := balance(t, e.st, ledger.Customer("alice")); got != -1250 {
		t.Fatalf("customer funds %d, want -1250", got)
	}
	e.svc.OutboxPass(ctx)
	e.svc.OutboxPass(ctx)
	if e.risk.get("alice") != 1250 || e.risk.applied != 1 {
		t.Fatalf("risk balance %d after %d transfers; want 1250 after 1", e.risk.get("alice"), e.risk.applied)
	}
	got, _ := e.st.GetPayment(ctx, p.ID)
	if !got.RiskCredited {
		t.Fatal("payment not marked risk_credited")
	}
	// The replay answers the first result and charges nothing more.
	again, replayed, err := e.svc.CreatePayment(ctx, "account:alice", "k1", deposit(1250, "tok_ok"))
	if err != nil || !replayed || again.ID != p.ID {
		t.Fatalf("replay: %+v %v %v", again, replayed, err)
	}
	if n := e.proc.Acted(processor.OpAuthorize); n != 1 {
		t.Fatalf("processor authorized %d times", n)
	}
	_, _, err = e.svc.CreatePayment(ctx, "account:alice", "k1", deposit(999, "tok_ok"))
	if ee, ok := errors.AsType[*errs.Error](err); !ok || ee.Field != "idempotency_key" {
		t.Fatalf("same key, other amount: %v", err)
	}
}

func TestDeclineDoesNotFallBack(t *testing.T) {
	a := instant.New("a", instant.WithDeclines(instant.Decline{Token: "tok_decline", Code: "insufficient_funds"}))
	b := instant.New("b")
	e := newEnv(t, a, b)
	p, _, err := e.svc.CreatePayment(context.Background(), "account:alice", "k", deposit(100, "tok_decline"))
	if err != nil || p.Status != domain.PaymentFailed || p.DeclineReason != domain.DeclineInsufficientFunds {
		t.Fatalf("%+v %v", p, err)
	}
	if b.Calls() != 0 {
		t.Fatal("a business decline fell back to the next processor")
	}
}

func TestNotReachedFallsBackUnknownDoesNot(t *testing.T) {
	a := instant.New("a", instant.WithFaults(func(c instant.Call) instant.Fault { return instant.FaultNotReached }))
	b := instant.New("b")
	e := newEnv(t, a, b)
	p, _, err := e.svc.CreatePayment(context.Background(), "account:alice", "k", deposit(100, "tok"))
	if err != nil || p.Status != domain.PaymentSucceeded || len(p.Attempts) != 2 {
		t.Fatalf("%+v %v", p, err)
	}
	for _, at := range p.Attempts {
		if want := map[string]domain.AttemptStatus{"a": domain.AttemptNotReached, "b": domain.AttemptCaptured}[at.Processor]; at.Status != want {
			t.Fatalf("attempt at %s: %s, want %s", at.Processor, at.Status, want)
		}
	}
	a.SetFaults(func(c instant.Call) instant.Fault {
		if c.Lookup {
			return instant.FaultNone
		}
		return instant.FaultUnknownAfter
	})
	p, _, err = e.svc.CreatePayment(context.Background(), "account:alice", "k2", deposit(100, "tok"))
	if err != nil || p.Status != domain.PaymentProcessing || len(p.Attempts) != 1 {
		t.Fatalf("after UNKNOWN: %+v %v", p, err)
	}
	if b.Acted(processor.OpAuthorize) != 1 {
		t.Fatal("an UNKNOWN fell back to the next processor")
	}
	// The janitor leaves it to the request until SettleAfter, then looks it up and settles it.
	e.svc.JanitorPass(context.Background())
	if got, _ := e.st.GetPayment(context.Background(), p.ID); got.Status != domain.PaymentProcessing {
		t.Fatalf("janitor settled a fresh attempt: %s", got.Status)
	}
	e.advance(6 * time.Second)
	e.svc.JanitorPass(context.Background())
	got, _ := e.st.GetPayment(context.Background(), p.ID)
	if got.Status != domain.PaymentSucceeded || a.Acted(processor.OpAuthorize) != 1 {
		t.Fatalf("after the janitor: %s, %d authorizations", got.Status, a.Acted(processor.OpAuthorize))
	}
	// The retry of the request now gets the settled payment.
	again, replayed, err := e.svc.CreatePayment(context.Background(), "account:alice", "k2", deposit(100, "tok"))
	if err != nil || !replayed || again.ID != p.ID {
		t.Fatalf("retry: %+v %v %v", again, replayed, err)
	}
}

func TestUnknownBeforeIsFailedByLookup(t *testing.T) {
	a := instant.New("a", instant.WithFaults(func(c instant.Call) instant.Fault {
		if c.Lookup {
			return instant.FaultNone
		}
		return instant.FaultUnknownBefore
	}))
	e := newEnv(t, a)
	p, _, _ := e.svc.CreatePayment(context.Background(), "account:alice", "k", deposit(100, "tok"))
	e.advance(6 * time.Second)
	e.svc.JanitorPass(context.Background())
	got, _ := e.st.GetPayment(context.Background(), p.ID)
	if got.Status != domain.PaymentFailed || balance(t, e.st, ledger.Customer("alice")) != 0 {
		t.Fatalf("never-charged payment: %s", got.Status)
	}
}

func TestManualCaptureAndCancel(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	in := deposit(1000, "tok")
	in.CaptureMethod = domain.CaptureManual
	p, _, err := e.svc.CreatePayment(ctx, "account:alice", "k", in)
	if err != nil || p.Status != domain.PaymentRequiresCapture {
		t.Fatalf("%+v %v", p, err)
	}
	p, _, err = e.svc.CapturePayment(ctx, "account:alice", "c1", p.ID, 600)
	if err != nil || p.Status != domain.PaymentSucceeded || p.Captured != 600 {
		t.Fatalf("capture: %+v %v", p, err)
	}
	if _, _, err := e.svc.CapturePayment(ctx, "account:alice", "c2", p.ID, 0); errs.KindOf(err) != errs.KindFailedPrecondition {
		t.Fatalf("second capture: %v", err)
	}
	q, _, _ := e.svc.CreatePayment(ctx, "account:alice", "k2", in)
	q, _, err = e.svc.CancelPayment(ctx, "account:alice", "x1", q.ID)
	if err != nil || q.Status != domain.PaymentCanceled {
		t.Fatalf("cancel: %+v %v", q, err)
	}
	if got := balance(t, e.st, ledger.Customer("alice")); got != -600 {
		t.Fatalf("customer funds %d, want -600", got)
	}
}

func TestRefundsNeverExceedCaptured(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p, _, _ := e.svc.CreatePayment(ctx, "account:alice", "k", deposit(1000, "tok"))
	e.svc.OutboxPass(ctx)
	r1, _, err := e.svc.RefundPayment(ctx, "account:alice", "r1", p.ID, 300, "")
	if err != nil || r1.Status != domain.RefundSucceeded {
		t.Fatalf("refund 1: %+v %v", r1, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := range 10 {
		wg.Go(func() {
			r, _, err := e.svc.RefundPayment(ctx, "account:alice", "rc"+string(rune('a'+i)), p.ID, 200, "")
			mu.Lock()
			defer mu.Unlock()
			if err == nil && r.Status == domain.RefundSucceeded {
				ok++
			} else if errs.KindOf(err) != errs.KindFailedPrecondition {
				t.Errorf("refund: %+v %v", r, err)
			}
		})
	}
	wg.Wait()
	got, _ := e.st.GetPayment(ctx, p.ID)
	if ok != 3 || got.Refunded != 900 || got.Status != domain.PaymentPartiallyRefunded {
		t.Fatalf("%d concurrent refunds of 200 succeeded, refunded %d, %s; want 3, 900, partially_refunded", ok, got.Refunded, got.Status)
	}
	if e.risk.get("alice") != 100 {
		t.Fatalf("risk balance %d, want 100", e.risk.get("alice"))
	}
	if _, _, err := e.svc.RefundPayment(ctx, "account:alice", "r9", p.ID, 101, ""); errs.KindOf(err) != errs.KindFailedPrecondition {
		t.Fatalf("over-refund: %v", err)
	}
	r, _, err := e.svc.RefundPayment(ctx, "account:alice", "r10", p.ID, 0, "")
	if err != nil || r.Amount.Amount != 100 {
		t.Fatalf("refund of the rest: %+v %v", r, err)
	}
	if got, _ := e.st.GetPayment(ctx, p.ID); got.Status != domain.PaymentRefunded {
		t.Fatalf("status %s, want refunded", got.Status)
	}
}

func TestPayoutSaga(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.svc.CreatePayment(ctx, "account:alice", "k", deposit(5000, "tok"))
	e.svc.OutboxPass(ctx)
	out := PayoutInput{AccountID: "alice", Amount: domain.Money{Amount: 2000, Currency: "USD"}, Destination: "ba_ok"}
	x, _, err := e.svc.CreatePayout(ctx, "account:alice", "p1", out)
	if err != nil || x.Status != domain.PayoutSucceeded || e.risk.get("alice") != 3000 {
		t.Fatalf("payout: %+v %v; risk %d", x, err, e.risk.get("alice"))
	}
	// Over the balance: risk refuses the debit and nothing moves.
	out.Amount.Amount = 999999
	x, _, err = e.svc.CreatePayout(ctx, "account:alice", "p2", out)
	if err != nil || x.Status != domain.PayoutFailed || x.DeclineReason != domain.DeclineRiskRejected {
		t.Fatalf("over balance: %+v %v", x, err)
	}
	// The processor declines: debited, then credited back.
	e.proc.SetFaults(nil)
	dec := instant.New("instant", instant.WithDeclines(instant.Decline{Token: "ba_bad", Code: "do_not_honor"}))
	e2 := newEnv(t, dec)
	e2.risk.balance["alice"] = 1000
	x, _, err = e2.svc.CreatePayout(ctx, "account:alice", "p3", PayoutInput{AccountID: "alice", Amount: domain.Money{Amount: 400, Currency: "USD"}, Destination: "ba_bad"})
	if err != nil || x.Status != domain.PayoutFailed || e2.risk.get("alice") != 1000 || e2.risk.applied != 2 {
		t.Fatalf("declined payout: %+v %v; risk %d after %d transfers", x, err, e2.risk.get("alice"), e2.risk.applied)
	}
	// Risk down at the debit: the payout waits, and the janitor finishes it once risk is back.
	e.risk.down = true
	out.Amount.Amount = 500
	x, _, err = e.svc.CreatePayout(ctx, "account:alice", "p4", out)
	if err != nil || x.Status != domain.PayoutPending {
		t.Fatalf("risk down: %+v %v", x, err)
	}
	e.risk.down = false
	e.advance(10 * time.Second)
	e.svc.JanitorPass(ctx)
	got, _ := e.st.GetPayout(ctx, x.ID)
	if got.Status != domain.PayoutSucceeded || e.risk.get("alice") != 2500 {
		t.Fatalf("after janitor: %s, risk %d", got.Status, e.risk.get("alice"))
	}
}

type fraudAbove struct{ limit int64 }

func (f fraudAbove) Check(_ context.Context, feat fraud.Features, m domain.Money) (FraudVerdict, error) {
	if m.Amount > f.limit {
		return FraudVerdict{Score: 0.97, Decline: true}, nil
	}
	return FraudVerdict{Score: 0.1}, nil
}

// A fraud decline fails the payment with fraud_suspected and its score, before any processor call.
func TestFraudDeclineBeforeProcessor(t *testing.T) {
	e := newEnv(t)
	e.svc.cfg.Fraud = fraudAbove{limit: 1000}
	p, _, err := e.svc.CreatePayment(context.Background(), "account:alice", "f1", deposit(5000, "tok"))
	if err != nil || p.Status != domain.PaymentFailed || p.DeclineReason != domain.DeclineFraudSuspected || p.FraudScore != 0.97 {
		t.Fatalf("%+v %v", p, err)
	}
	if e.proc.Calls() != 0 {
		t.Fatal("the processor was called for a payment the fraud check declined")
	}
	p, _, err = e.svc.CreatePayment(context.Background(), "account:alice", "f2", deposit(500, "tok"))
	if err != nil || p.Status != domain.PaymentSucceeded || p.FraudScore != 0.1 {
		t.Fatalf("%+v %v", p, err)
	}
}

type noRoute struct{}

func (noRoute) Route(domain.Method, domain.Money) ([]processor.Processor, error) {
	return nil, errs.Invalid("method", "no processor takes it")
}

// A payment no processor takes is refused like bad input: nothing written, the key stays free.
func TestNoRouteWritesNothing(t *testing.T) {
	e := newEnv(t)
	e.svc.cfg.Router = noRoute{}
	_, _, err := e.svc.CreatePayment(context.Background(), "account:alice", "n1", deposit(500, "tok"))
	if ee, ok := errors.AsType[*errs.Error](err); !ok || ee.Field != "method" {
		t.Fatalf("%v, want InvalidArgument naming method", err)
	}
	if ps, _ := e.st.ListPayments(context.Background(), store.PaymentFilter{Limit: 10}); len(ps) != 0 {
		t.Fatalf("%d payments written", len(ps))
	}
}

// loseOnce applies a risk call and then answers as if the connection broke, once, for refs with the
// given suffix: the same as payment crashing after the call and before its commit.
type loseOnce struct {
	*fakeRisk
	suffix string
	lost   bool
}

func (l *loseOnce) lose(ref string) bool {
	if !l.lost && strings.HasSuffix(ref, l.suffix) {
		l.lost = true
		return true
	}
	return false
}

func (l *loseOnce) Credit(ctx context.Context, account, asset, amount, ref string) error {
	err := l.fakeRisk.Credit(ctx, account, asset, amount, ref)
	if err == nil && l.lose(ref) {
		return errs.New(errs.KindUnavailable, "answer lost")
	}
	return err
}

func (l *loseOnce) Debit(ctx context.Context, account, asset, amount, ref string) error {
	err := l.fakeRisk.Debit(ctx, account, asset, amount, ref)
	if err == nil && l.lose(ref) {
		return errs.New(errs.KindUnavailable, "answer lost")
	}
	return err
}

// Each step of the payout saga acts and loses its answer once (as a crash between the call and the
// commit would): the janitor runs the step again, and risk and the processor each act once.
func TestPayoutSagaResumesAfterEachStep(t *testing.T) {
	for _, c := range []struct {
		name, dest string
		step       string // "debit", "payout", "reversal"
		want       domain.PayoutStatus
		riskAfter  int64
	}{
		{"debit lost", "ba_ok", "debit", domain.PayoutSucceeded, 600},
		{"payout lost", "ba_ok", "payout", domain.PayoutSucceeded, 600},
		{"reversal lost", "ba_bad", "reversal", domain.PayoutFailed, 1000},
	} {
		t.Run(c.name, func(t *testing.T) {
			proc := instant.New("instant", instant.WithDeclines(instant.Decline{Token: "ba_bad", Code: "do_not_honor"}))
			e := newEnv(t, proc)
			risk := &loseOnce{fakeRisk: e.risk}
			switch c.step {
			case "debit":
				risk.suffix = "" // the payout id itself: the first debit
			case "reversal":
				risk.suffix = ":reversal"
			case "payout":
				risk.lost = true
				lostPayout := false
				proc.SetFaults(func(call instant.Call) instant.Fault {
					if call.Op == processor.OpPayout && !call.Lookup && !lostPayout {
						lostPayout = true
						return instant.FaultUnknownAfter
					}
					return instant.FaultNone
				})
			}
			e.svc.cfg.Risk = risk
			e.risk.balance["alice"] = 1000
			ctx := context.Background()
			x, _, err := e.svc.CreatePayout(ctx, "account:alice", "p", PayoutInput{AccountID: "alice",
				Amount: domain.Money{Amount: 400, Currency: "USD"}, Destination: c.dest})
			if err != nil {
				t.Fatal(err)
			}
			if x.Status == c.want {
				t.Fatalf("finished without the janitor (%s): the lost answer was not lost", x.Status)
			}
			for range 5 {
				e.advance(time.Minute)
				e.svc.JanitorPass(ctx)
			}
			got, _ := e.st.GetPayout(ctx, x.ID)
			if got.Status != c.want || e.risk.get("alice") != c.riskAfter {
				t.Fatalf("payout %s, risk %d; want %s, %d", got.Status, e.risk.get("alice"), c.want, c.riskAfter)
			}
			if n := proc.Acted(processor.OpPayout); n != 1 {
				t.Fatalf("the processor acted on %d payouts, want 1", n)
			}
			// The client's retry gets the final payout.
			again, replayed, err := e.svc.CreatePayout(ctx, "account:alice", "p", PayoutInput{AccountID: "alice",
				Amount: domain.Money{Amount: 400, Currency: "USD"}, Destination: c.dest})
			if err != nil || !replayed || again.ID != x.ID {
				t.Fatalf("retry: %+v %v %v", again, replayed, err)
			}
		})
	}
}

// A refund whose processor answer was lost is UNKNOWN until the janitor asks again with the same
// key: refunded once, risk debited once.
func TestRefundUnknownSettledOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p, _, _ := e.svc.CreatePayment(ctx, "account:alice", "k", deposit(1000, "tok"))
	e.svc.OutboxPass(ctx)
	lost := false
	e.proc.SetFaults(func(c instant.Call) instant.Fault {
		if c.Op == processor.OpRefund && !lost {
			lost = true
			return instant.FaultUnknownAfter
		}
		return instant.FaultNone
	})
	r, _, err := e.svc.RefundPayment(ctx, "account:alice", "r", p.ID, 400, "")
	if err != nil || r.Status != domain.RefundUnknown {
		t.Fatalf("%+v %v", r, err)
	}
	e.advance(time.Minute)
	e.svc.JanitorPass(ctx)
	got, _ := e.st.GetRefund(ctx, r.ID)
	pay, _ := e.st.GetPayment(ctx, p.ID)
	if got.Status != domain.RefundSucceeded || e.proc.Acted(processor.OpRefund) != 1 || e.risk.get("alice") != 600 || pay.Refunded != 400 {
		t.Fatalf("refund %s, %d refunds at the processor, risk %d, refunded %d", got.Status, e.proc.Acted(processor.OpRefund), e.risk.get("alice"), pay.Refunded)
	}
}
