package flows

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/pkg/testenv"
	"github.com/bourse-dev/bourse/services/payment/internal/domain"
	"github.com/bourse-dev/bourse/services/payment/internal/idempotency"
	"github.com/bourse-dev/bourse/services/payment/internal/ledger"
	"github.com/bourse-dev/bourse/services/payment/internal/paytest"
	"github.com/bourse-dev/bourse/services/payment/internal/processor"
	"github.com/bourse-dev/bourse/services/payment/internal/processor/instant"
	"github.com/bourse-dev/bourse/services/payment/internal/store"
)

// laneEnv is newEnv on url (SQLite path or PostgreSQL), with the store's options.
func laneEnv(t *testing.T, url string, o store.Options) *env {
	t.Helper()
	st, err := store.OpenWith(context.Background(), url, o)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{st: st, risk: newFakeRisk(), now: time.Now(),
		proc: instant.New("instant", instant.WithDeclines(instant.Decline{Token: "tok_decline", Code: "insufficient_funds"}))}
	e.svc = New(Config{Store: st, Router: Static{e.proc}, Risk: e.risk, ProcessorTimeout: time.Second, SettleAfter: 5 * time.Second})
	t.Cleanup(func() {
		if err := st.CheckInvariants(context.Background()); err != nil {
			t.Error(err)
		}
		st.Close()
	})
	return e
}

// onBothLanes runs fn on SQLite and PostgreSQL, each with the deposit lanes on and off
// (NoGroupCommit: every deposit takes the general path).
func onBothLanes(t *testing.T, fn func(t *testing.T, e *env, lanes bool)) {
	modes := []struct {
		name string
		o    store.Options
	}{{"lanes", store.Options{}}, {"general", store.Options{NoGroupCommit: true}}}
	t.Run("sqlite", func(t *testing.T) {
		for _, m := range modes {
			t.Run(m.name, func(t *testing.T) {
				e := laneEnv(t, filepath.Join(t.TempDir(), "payment.db"), m.o)
				if e.st.HasLanes() == m.o.NoGroupCommit {
					t.Fatalf("HasLanes %v with %+v", e.st.HasLanes(), m.o)
				}
				fn(t, e, !m.o.NoGroupCommit)
			})
		}
	})
	t.Run("postgres", func(t *testing.T) {
		for _, m := range modes {
			t.Run(m.name, func(t *testing.T) {
				e := laneEnv(t, testenv.StartPostgres(t), m.o)
				fn(t, e, !m.o.NoGroupCommit)
			})
		}
	})
}

// laneWrites is the lanes' count of claims and verdicts since before.
func laneWrites(st *store.Store, before [2]int64) [2]int64 {
	c, v := st.LaneWrites()
	return [2]int64{c - before[0], v - before[1]}
}

func lanesNow(st *store.Store) [2]int64 { return laneWrites(st, [2]int64{}) }

// A deposit through CreatePayment takes the lanes for its claim and its verdict when the store has
// them (and never when it does not); its answer is the stored payment, and a replay answers it again.
func TestCreatePaymentTakesTheLanes(t *testing.T) {
	onBothLanes(t, func(t *testing.T, e *env, lanes bool) {
		ctx := context.Background()
		for _, token := range []string{"tok", "tok_decline"} {
			before := lanesNow(e.st)
			p, replayed, err := e.svc.CreatePayment(ctx, "account:alice", "lane-"+token, deposit(250, token))
			if err != nil || replayed {
				t.Fatalf("%s: replayed %v, %v", token, replayed, err)
			}
			want := [2]int64{}
			if lanes {
				want = [2]int64{1, 1}
			}
			if got := laneWrites(e.st, before); got != want {
				t.Fatalf("%s: lanes wrote %v claims and verdicts, want %v", token, got, want)
			}
			wantStatus := domain.PaymentSucceeded
			if token == "tok_decline" {
				wantStatus = domain.PaymentFailed
			}
			if p.Status != wantStatus || len(p.Attempts) != 1 {
				t.Fatalf("%s: answered %s with %d attempts", token, p.Status, len(p.Attempts))
			}
			stored := requireAnsweredAsStored(t, e, token, p)
			before = lanesNow(e.st)
			again, replayed, err := e.svc.CreatePayment(ctx, "account:alice", "lane-"+token, deposit(250, token))
			if err != nil || !replayed || !reflect.DeepEqual(again, stored) {
				t.Fatalf("%s: replay (replayed %v, %v) %+v\nstored %+v", token, replayed, err, again, stored)
			}
			if got := laneWrites(e.st, before); got != [2]int64{} {
				t.Fatalf("%s: a replay wrote %v through the lanes", token, got)
			}
		}
		if n := e.proc.Acted(processor.OpAuthorize); n != 2 {
			t.Fatalf("processor authorized %d times, want 2", n)
		}
	})
}

// answer is what a CreatePayment returned.
type answer struct {
	p   domain.Payment
	err error
}

// stallInFlight starts CreatePayment(caller, key, in) on svc and returns once the request has
// claimed its key and stopped before its processor call; finish lets it go on and returns its
// answer.
func stallInFlight(t *testing.T, svc *Service, caller, key string, in PaymentInput) (finish func() answer) {
	t.Helper()
	entered, release := make(chan struct{}), make(chan struct{})
	var once, released sync.Once
	t.Cleanup(func() { released.Do(func() { close(release) }) })
	svc.beforeAuthorize = func(domain.Attempt) {
		once.Do(func() {
			close(entered)
			<-release
		})
	}
	first := make(chan answer, 1)
	go func() {
		p, _, err := svc.CreatePayment(context.Background(), caller, key, in)
		first <- answer{p, err}
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first request never reached its processor call")
	}
	finish = func() answer {
		released.Do(func() { close(release) })
		a := <-first
		svc.beforeAuthorize = nil
		return a
	}
	return finish
}

// refusedWhileInFlight stalls a deposit with key in first's service before its processor call,
// sends the same key through other's (same parameters, then another amount), and wants both refused
// (in use; a misuse of idempotency_key) with nothing written through other's lanes. It returns the
// first request's answer once it has finished, which must be a success.
func refusedWhileInFlight(t *testing.T, first, other *env, key string) answer {
	t.Helper()
	ctx := context.Background()
	finish := stallInFlight(t, first.svc, "account:alice", key, deposit(900, "tok"))
	before := lanesNow(other.st)
	_, _, inUse := other.svc.CreatePayment(ctx, "account:alice", key, deposit(900, "tok"))
	_, _, misuse := other.svc.CreatePayment(ctx, "account:alice", key, deposit(901, "tok"))
	wrote := laneWrites(other.st, before)
	a := finish()
	if !errors.Is(inUse, idempotency.ErrInUse) {
		t.Fatalf("same key while in flight: %v, want ErrInUse", inUse)
	}
	if ee, ok := errors.AsType[*errs.Error](misuse); !ok || ee.Field != "idempotency_key" {
		t.Fatalf("same key, other amount, while in flight: %v", misuse)
	}
	if wrote != [2]int64{} {
		t.Fatalf("refused requests wrote %v through the lanes", wrote)
	}
	if a.err != nil || a.p.Status != domain.PaymentSucceeded {
		t.Fatalf("first request: %+v %v", a.p, a.err)
	}
	return a
}

// While the request that claimed a key is still executing, another with the key is refused as in
// use (or as a misuse of the key, with other parameters), writes nothing, and once the first has
// finished a retry replays its answer.
func TestCreatePaymentKeyInFlightOnLanes(t *testing.T) {
	onBothLanes(t, func(t *testing.T, e *env, lanes bool) {
		ctx := context.Background()
		a := refusedWhileInFlight(t, e, e, "busy")
		if n, err := e.st.ListPayments(ctx, store.PaymentFilter{AccountID: "alice", Limit: 10}); err != nil || len(n) != 1 {
			t.Fatalf("%d payments (%v), want 1", len(n), err)
		}
		again, replayed, err := e.svc.CreatePayment(ctx, "account:alice", "busy", deposit(900, "tok"))
		a.p.PaymentToken = ""
		if err != nil || !replayed || !reflect.DeepEqual(again, a.p) {
			t.Fatalf("retry after the first finished (replayed %v, %v): %+v\nfirst answered %+v", replayed, err, again, a.p)
		}
		if n := e.proc.Acted(processor.OpAuthorize); n != 1 {
			t.Fatalf("processor authorized %d times, want 1", n)
		}
	})
}

// 100 concurrent CreatePayment with one key execute once: one payment, one authorization, one
// ledger transaction, one outbox row; every other request is refused as in use or replays the one
// payment. With the lanes on, its claim and verdict are the lanes' (and no refused one's).
func TestConcurrentSameKeyOnLanes(t *testing.T) {
	onBothLanes(t, func(t *testing.T, e *env, lanes bool) {
		ctx := context.Background()
		var wg sync.WaitGroup
		var mu sync.Mutex
		ids := map[string]int{}
		inUse := 0
		for range 100 {
			wg.Go(func() {
				p, _, err := e.svc.CreatePayment(ctx, "account:alice", "same", deposit(700, "tok"))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case errors.Is(err, idempotency.ErrInUse):
					inUse++
				case err != nil:
					t.Error(err)
				default:
					ids[p.ID]++
				}
			})
		}
		wg.Wait()
		if len(ids) != 1 || e.proc.Acted(processor.OpAuthorize) != 1 {
			t.Fatalf("payments %v (%d in use), authorizations %d; want one of each", ids, inUse, e.proc.Acted(processor.OpAuthorize))
		}
		ps, err := e.st.ListPayments(ctx, store.PaymentFilter{AccountID: "alice", Limit: 200})
		if err != nil || len(ps) != 1 || ps[0].Status != domain.PaymentSucceeded {
			t.Fatalf("stored payments %+v, %v; want one succeeded", ps, err)
		}
		lts, err := e.st.LedgerTransactions(ctx, "", 0, 200)
		if err != nil || len(lts) != 1 || lts[0].Ref != ps[0].ID || len(lts[0].Entries) != 2 {
			t.Fatalf("ledger transactions %+v, %v; want one, of the payment", lts, err)
		}
		if n, err := e.st.OutboxLen(ctx); err != nil || n != 1 {
			t.Fatalf("%d outbox rows (%v), want 1", n, err)
		}
		want := [2]int64{}
		if lanes {
			want = [2]int64{1, 1}
		}
		if got := lanesNow(e.st); got != want {
			t.Fatalf("lanes wrote %v claims and verdicts, want %v", got, want)
		}
		if got := balance(t, e.st, ledger.Customer("alice")); got != -700 {
			t.Fatalf("customer funds %d, want -700", got)
		}
	})
}

// The same deposit answers, stores and replays alike with the lanes on and off.
func TestCreatePaymentLanesAnswerAsGeneralPath(t *testing.T) {
	answers := map[string]map[bool][2]domain.Payment{} // backend → lanes → answer, replay
	onBothLanes(t, func(t *testing.T, e *env, lanes bool) {
		ctx := context.Background()
		backend := strings.Split(t.Name(), "/")[1]
		for _, token := range []string{"tok", "tok_decline"} {
			in := deposit(4321, token)
			in.Metadata = map[string]string{"order": "o-1"}
			p, _, err := e.svc.CreatePayment(ctx, "account:alice", "eq-"+token, in)
			if err != nil {
				t.Fatal(err)
			}
			again, replayed, err := e.svc.CreatePayment(ctx, "account:alice", "eq-"+token, in)
			if err != nil || !replayed {
				t.Fatalf("replay: %v %v", replayed, err)
			}
			if answers[backend+token] == nil {
				answers[backend+token] = map[bool][2]domain.Payment{}
			}
			p.PaymentToken = ""
			answers[backend+token][lanes] = [2]domain.Payment{paytest.Normalized(p), paytest.Normalized(again)}
		}
		if lanes {
			return // the general run, second, compares
		}
		for _, token := range []string{"tok", "tok_decline"} {
			a := answers[backend+token]
			if !reflect.DeepEqual(a[true], a[false]) {
				t.Fatalf("%s: with lanes answered and replayed %+v\nwithout %+v", token, a[true], a[false])
			}
		}
	})
}

// A manual-capture deposit's verdict takes the lane too (an authorization: no ledger transaction
// until the capture, which the general path writes), and a fraud-checked deposit claims through the
// lane but, its attempt made only after the check, settles through the general path. Both answer,
// replay and settle the money as they do without lanes.
func TestCreatePaymentLaneManualCaptureAndFraud(t *testing.T) {
	onBothLanes(t, func(t *testing.T, e *env, lanes bool) {
		ctx := context.Background()
		in := deposit(1000, "tok")
		in.CaptureMethod = domain.CaptureManual
		before := lanesNow(e.st)
		p, _, err := e.svc.CreatePayment(ctx, "account:alice", "manual", in)
		if err != nil || p.Status != domain.PaymentRequiresCapture || p.Attempts[0].Status != domain.AttemptAuthorized {
			t.Fatalf("manual capture deposit: %+v %v", p, err)
		}
		if lts, err := e.st.LedgerTransactions(ctx, "", 0, 10); err != nil || len(lts) != 0 {
			t.Fatalf("an authorization posted %+v (%v)", lts, err)
		}
		if again, replayed, err := e.svc.CreatePayment(ctx, "account:alice", "manual", in); err != nil || !replayed || again.Status != p.Status {
			t.Fatalf("replay: %+v %v %v", again, replayed, err)
		}
		c, _, err := e.svc.CapturePayment(ctx, "account:alice", "cap", p.ID, 600)
		if err != nil || c.Status != domain.PaymentSucceeded || c.Captured != 600 {
			t.Fatalf("capture: %+v %v", c, err)
		}

		e.svc.cfg.Fraud = fraudAbove{limit: 5000}
		f, _, err := e.svc.CreatePayment(ctx, "account:alice", "fraud-ok", deposit(500, "tok"))
		if err != nil || f.Status != domain.PaymentSucceeded || f.FraudScore != 0.1 {
			t.Fatalf("fraud-checked deposit: %+v %v", f, err)
		}
		d, _, err := e.svc.CreatePayment(ctx, "account:alice", "fraud-declined", deposit(9000, "tok"))
		if err != nil || d.Status != domain.PaymentFailed || d.DeclineReason != domain.DeclineFraudSuspected {
			t.Fatalf("fraud-declined deposit: %+v %v", d, err)
		}
		for key, want := range map[string]domain.Payment{"fraud-ok": f, "fraud-declined": d} {
			in := deposit(want.Amount.Amount, "tok")
			again, replayed, err := e.svc.CreatePayment(ctx, "account:alice", key, in)
			if err != nil || !replayed || again.ID != want.ID || again.Status != want.Status {
				t.Fatalf("%s replay: %+v %v %v", key, again, replayed, err)
			}
		}
		// Lanes: the manual deposit's claim and verdict, the fraud-checked ones' claims only.
		wantLanes := [2]int64{}
		if lanes {
			wantLanes = [2]int64{3, 1}
		}
		if got := laneWrites(e.st, before); got != wantLanes {
			t.Fatalf("lanes wrote %v claims and verdicts, want %v", got, wantLanes)
		}
		if got := balance(t, e.st, ledger.Customer("alice")); got != -1100 {
			t.Fatalf("customer funds %d, want -1100", got)
		}
	})
}

// Whichever way in a deposit takes first (the lane's claim for a key the process has not seen
// lately, the record's read for one it has), it gets the same answer: a process that has never
// seen a key (here, one restarted on the same store) replays its stored result, and a key the process
// has seen but that has no record is claimed and executed once, through the lanes when there are any.
func TestCreatePaymentEitherWayIn(t *testing.T) {
	onBothLanes(t, func(t *testing.T, e *env, lanes bool) {
		ctx := context.Background()
		first, _, err := e.svc.CreatePayment(ctx, "account:alice", "either-1", deposit(300, "tok"))
		if err != nil {
			t.Fatal(err)
		}
		stored := requireAnsweredAsStored(t, e, "either-1", first)
		restarted := New(Config{Store: e.st, Router: Static{e.proc}, Risk: e.risk, ProcessorTimeout: time.Second, SettleAfter: 5 * time.Second})
		before := lanesNow(e.st)
		again, replayed, err := restarted.CreatePayment(ctx, "account:alice", "either-1", deposit(300, "tok"))
		if err != nil || !replayed || !reflect.DeepEqual(again, stored) {
			t.Fatalf("unseen replay (replayed %v, %v) %+v\nstored %+v", replayed, err, again, stored)
		}
		if got := laneWrites(e.st, before); got != [2]int64{} {
			t.Fatalf("an unseen replay wrote %v through the lanes", got)
		}
		if _, _, err := restarted.CreatePayment(ctx, "account:alice", "either-1", deposit(301, "tok")); errs.KindOf(err) != errs.KindInvalidArgument || !strings.Contains(err.Error(), "idempotency_key") {
			t.Fatalf("unseen key with other parameters: %v, want an idempotency_key error", err)
		}

		e.svc.recent.remember("account:alice", "either-2")
		before = lanesNow(e.st)
		p, replayed, err := e.svc.CreatePayment(ctx, "account:alice", "either-2", deposit(400, "tok"))
		if err != nil || replayed || p.Status != domain.PaymentSucceeded {
			t.Fatalf("seen key without a record: %s, replayed %v, %v", p.Status, replayed, err)
		}
		want := [2]int64{}
		if lanes {
			want = [2]int64{1, 1}
		}
		if got := laneWrites(e.st, before); got != want {
			t.Fatalf("seen key without a record: lanes wrote %v, want %v", got, want)
		}
		requireAnsweredAsStored(t, e, "either-2", p)
		if n := e.proc.Acted(processor.OpAuthorize); n != 2 {
			t.Fatalf("processor authorized %d times, want 2", n)
		}
	})
}
