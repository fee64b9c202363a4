package acquirer

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// open starts an acquirer on the SQLite file in dir, closing it when the test ends.
func open(t *testing.T, dir string, f Faults) (*Acquirer, *Store) {
	t.Helper()
	st, err := OpenStore(context.Background(), filepath.Join(dir, "acquirer.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a, err := New(context.Background(), st, Config{Faults: f})
	if err != nil {
		t.Fatal(err)
	}
	return a, st
}

func act(t *testing.T, a *Acquirer, req Request) (Operation, bool) {
	t.Helper()
	op, replayed, err := a.Act(context.Background(), req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Kind, req.Key, err)
	}
	return op, replayed
}

func auth(key string, amount int64, token string) Request {
	return Request{Kind: Authorize, Key: key, Amount: amount, Currency: "USD", Method: "card", Token: token}
}

func TestSameKeyAnswersTheFirstOutcomeAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	a, st := open(t, dir, Faults{Rules: []DeclineRule{{Token: "tok_bad", Code: "card_declined"}}})
	first, replayed := act(t, a, auth("att-1", 500, "tok_ok"))
	if replayed || first.Outcome != Approved || first.Seq != 1 || first.Ref != "auth_1" {
		t.Fatalf("first authorize: %+v replayed=%v", first, replayed)
	}
	declined, _ := act(t, a, auth("att-2", 500, "tok_bad"))
	if declined.Outcome != Declined || declined.DeclineCode != "card_declined" {
		t.Fatalf("authorize on tok_bad: %+v, want declined card_declined", declined)
	}
	again, replayed := act(t, a, auth("att-1", 500, "tok_ok"))
	if !replayed || again.Ref != first.Ref || again.Seq != first.Seq {
		t.Fatalf("repeat: %+v replayed=%v, want the first outcome replayed", again, replayed)
	}
	_, _, err := a.Act(context.Background(), auth("att-1", 501, "tok_ok"))
	if e, ok := errors.AsType[*errs.Error](err); !ok || e.Kind != errs.KindAlreadyExists || e.Field != "key" {
		t.Fatalf("same key, other amount: %v, want AlreadyExists on key", err)
	}
	// The same key for another kind is another operation.
	if op, replayed := act(t, a, Request{Kind: Capture, Key: "att-1", AuthorizeKey: "att-1", Amount: 200, Currency: "USD"}); replayed || op.Outcome != Approved {
		t.Fatalf("capture keyed like the authorization: %+v replayed=%v", op, replayed)
	}
	st.Close()

	// A new process on the same file: the decline stays a decline even with the rule gone.
	b, _ := open(t, dir, Faults{})
	for _, c := range []struct {
		req  Request
		want Operation
	}{{auth("att-1", 500, "tok_ok"), first}, {auth("att-2", 500, "tok_bad"), declined}} {
		op, replayed := act(t, b, c.req)
		if !replayed || op.Outcome != c.want.Outcome || op.Ref != c.want.Ref || op.DeclineCode != c.want.DeclineCode || !op.ActedAt.Equal(c.want.ActedAt) {
			t.Fatalf("after restart %s: %+v, want %+v replayed", c.req.Key, op, c.want)
		}
	}
	// Aggregates are rebuilt: 300 of 500 is left to capture.
	if op, _ := act(t, b, Request{Kind: Capture, Key: "cap-2", AuthorizeKey: "att-1", Amount: 301, Currency: "USD"}); op.DeclineCode != CodeExceedsAuthorization {
		t.Fatalf("capture of 301 after 200 of 500: %+v", op)
	}
	if op, _ := act(t, b, Request{Kind: Capture, Key: "cap-3", AuthorizeKey: "att-1", Amount: 300, Currency: "USD"}); op.Outcome != Approved || op.Seq != 5 {
		t.Fatalf("capture of the remaining 300: %+v", op)
	}
	ops, next := b.List("", "", 0, 100)
	if len(ops) != 5 || next != 0 {
		t.Fatalf("list: %d operations (next %d), want 5", len(ops), next)
	}
	s := b.Stats()
	if s.Kinds[Authorize].Replayed != 2 || s.Kinds[Authorize].Stored != 2 || s.Kinds[Capture].Stored != 3 || s.Kinds[Capture].Declined != 1 {
		t.Fatalf("stats after restart: %+v", s.Kinds)
	}
}

func TestCapturesRefundsAndVoidsStayWithinTheirBounds(t *testing.T) {
	a, _ := open(t, t.TempDir(), Faults{})
	act(t, a, auth("a", 1000, "tok"))
	act(t, a, Request{Kind: Authorize, Key: "b", Amount: 700, Currency: "EUR", Token: "tok", Capture: true})
	act(t, a, auth("c", 100, "tok"))
	cases := []struct {
		req      Request
		wantCode string // "" approved
	}{
		{Request{Kind: Capture, Key: "x1", AuthorizeKey: "nope", Amount: 1, Currency: "USD"}, CodeAuthorizationNotFound},
		{Request{Kind: Capture, Key: "x2", AuthorizeKey: "a", Amount: 1, Currency: "EUR"}, CodeCurrencyMismatch},
		{Request{Kind: Refund, Key: "r0", AuthorizeKey: "a", Amount: 1, Currency: "USD"}, CodeExceedsCaptured},
		{Request{Kind: Capture, Key: "x3", AuthorizeKey: "a", Amount: 600, Currency: "USD"}, ""},
		{Request{Kind: Capture, Key: "x4", AuthorizeKey: "a", Amount: 401, Currency: "USD"}, CodeExceedsAuthorization},
		{Request{Kind: Capture, Key: "x5", AuthorizeKey: "a", Amount: 400, Currency: "USD"}, ""},
		{Request{Kind: Void, Key: "v1", AuthorizeKey: "a"}, CodeAlreadyCaptured},
		{Request{Kind: Refund, Key: "r1", AuthorizeKey: "a", Amount: 999, Currency: "USD"}, ""},
		{Request{Kind: Refund, Key: "r2", AuthorizeKey: "a", Amount: 2, Currency: "USD"}, CodeExceedsCaptured},
		{Request{Kind: Refund, Key: "r3", AuthorizeKey: "a", Amount: 1, Currency: "USD"}, ""},
		{Request{Kind: Capture, Key: "x6", AuthorizeKey: "b", Amount: 1, Currency: "EUR"}, CodeExceedsAuthorization},
		{Request{Kind: Refund, Key: "r4", AuthorizeKey: "b", Amount: 700, Currency: "EUR"}, ""},
		{Request{Kind: Void, Key: "v2", AuthorizeKey: "c"}, ""},
		{Request{Kind: Void, Key: "v3", AuthorizeKey: "c"}, CodeAlreadyVoided},
		{Request{Kind: Capture, Key: "x7", AuthorizeKey: "c", Amount: 1, Currency: "USD"}, CodeAlreadyVoided},
		{Request{Kind: Payout, Key: "p1", Amount: 5, Currency: "USD", Destination: "ba_1"}, ""},
	}
	for _, c := range cases {
		op, _ := act(t, a, c.req)
		if c.wantCode == "" && op.Outcome != Approved || c.wantCode != "" && (op.Outcome != Declined || op.DeclineCode != c.wantCode) {
			t.Errorf("%s %s of %d on %q: %v %q (%s), want code %q", c.req.Kind, c.req.Key, c.req.Amount, c.req.AuthorizeKey,
				op.Outcome, op.DeclineCode, op.Message, c.wantCode)
		}
	}
	if op, _, _ := a.Lookup(context.Background(), Void, "v2"); op.Amount != 100 || op.Currency != "USD" {
		t.Fatalf("a void carries the authorization's amount: %+v", op)
	}
}

func TestDeclineRulesByTokenAmountAndKind(t *testing.T) {
	rules, err := ParseDeclineRules("token=tok_stolen,code=stolen_card; min=100000,currency=USD,code=insufficient_funds;kinds=refund,max=5,code=refund_blocked;token=ba_closed")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := open(t, t.TempDir(), Faults{Rules: rules})
	cases := []struct {
		req  Request
		want string
	}{
		{auth("1", 10, "tok_stolen"), "stolen_card"},
		{auth("2", 100000, "tok"), "insufficient_funds"},
		{Request{Kind: Authorize, Key: "3", Amount: 100000, Currency: "EUR", Token: "tok"}, ""},
		{auth("4", 99999, "tok"), ""},
		{Request{Kind: Payout, Key: "5", Amount: 1, Currency: "USD", Destination: "ba_closed"}, CodeDoNotHonor},
		{Request{Kind: Payout, Key: "6", Amount: 1, Currency: "USD", Destination: "ba_open"}, ""},
		{Request{Kind: Capture, Key: "7", AuthorizeKey: "4", Amount: 99999, Currency: "USD"}, ""},
		{Request{Kind: Refund, Key: "8", AuthorizeKey: "4", Amount: 5, Currency: "USD"}, "refund_blocked"},
		{Request{Kind: Refund, Key: "9", AuthorizeKey: "4", Amount: 6, Currency: "USD"}, ""},
	}
	for _, c := range cases {
		op, _ := act(t, a, c.req)
		if got := op.DeclineCode; got != c.want || (c.want == "") != (op.Outcome == Approved) {
			t.Errorf("%s %s: %v %q, want %q", c.req.Kind, c.req.Key, op.Outcome, got, c.want)
		}
	}
	for _, bad := range []string{"token", "min=x", "kinds=charge", "colour=red"} {
		if _, err := ParseDeclineRules(bad); err == nil {
			t.Errorf("rule %q parsed", bad)
		}
	}
}

// Concurrent calls with one key act once and all answer the same operation.
func TestConcurrentSameKeyActsOnce(t *testing.T) {
	a, _ := open(t, t.TempDir(), Faults{})
	const n = 64
	var wg sync.WaitGroup
	ops := make([]Operation, n)
	replays := make([]bool, n)
	for i := range n {
		wg.Go(func() {
			op, replayed, err := a.Act(context.Background(), auth("same", 42, "tok"))
			if err != nil {
				t.Error(err)
			}
			ops[i], replays[i] = op, replayed
		})
		// Other keys in between share the commits.
		wg.Go(func() { act(t, a, auth(fmt.Sprint("other-", i), 1, "tok")) })
	}
	wg.Wait()
	first := 0
	for i := range n {
		if ops[i].Seq != ops[0].Seq || ops[i].Ref != ops[0].Ref {
			t.Fatalf("call %d answered %+v, call 0 %+v", i, ops[i], ops[0])
		}
		if !replays[i] {
			first++
		}
	}
	if first != 1 {
		t.Fatalf("%d calls acted, want 1", first)
	}
	if got := a.Stats().Kinds[Authorize].Stored; got != n+1 {
		t.Fatalf("%d authorizations stored, want %d", got, n+1)
	}
}

func TestFaults(t *testing.T) {
	a, _ := open(t, t.TempDir(), Faults{})
	ctx := context.Background()

	if err := a.SetFaults(Faults{FailBefore: 1}); err != nil {
		t.Fatal(err)
	}
	_, _, err := a.Act(ctx, auth("f1", 1, "tok"))
	if _, ok := errors.AsType[*NotActedError](err); !ok {
		t.Fatalf("fail before acting: %v, want NotActedError", err)
	}
	if _, found, _ := a.Lookup(ctx, Authorize, "f1"); found {
		t.Fatal("a call that failed before acting was stored")
	}

	if err := a.SetFaults(Faults{LoseAnswer: 1, Kinds: []Kind{Authorize}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Act(ctx, auth("f2", 1, "tok")); !errors.Is(err, ErrAnswerLost) {
		t.Fatalf("lost answer: %v", err)
	}
	if op, found, err := a.Lookup(ctx, Authorize, "f2"); err != nil || !found || op.Outcome != Approved {
		t.Fatalf("lookup after a lost answer: %+v %v %v, want approved", op, found, err)
	}
	// Faults limited to authorize leave payouts alone.
	act(t, a, Request{Kind: Payout, Key: "p", Amount: 1, Currency: "USD", Destination: "d"})

	// A deadline that passes during the latency: never acted on, not even later.
	if err := a.SetFaults(Faults{Latency: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, _, err = a.Act(short, auth("f3", 1, "tok"))
	if _, ok := errors.AsType[*NotActedError](err); !ok || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline inside the latency: %v", err)
	}
	time.Sleep(400 * time.Millisecond)
	if _, found, _ := a.Lookup(ctx, Authorize, "f3"); found {
		t.Fatal("a call whose deadline passed was acted on")
	}
	s := a.Stats().Kinds[Authorize]
	if s.FailedBefore != 1 || s.AnswersLost != 1 || s.Stored != 1 {
		t.Fatalf("stats: %+v", s)
	}

	for _, bad := range []Faults{{FailBefore: 1.5}, {Latency: -1}, {Latency: time.Hour}, {Rules: []DeclineRule{{MinAmount: 5, MaxAmount: 4}}}, {Kinds: []Kind{"charge"}}} {
		if err := a.SetFaults(bad); errs.KindOf(err) != errs.KindInvalidArgument {
			t.Errorf("faults %+v: %v, want InvalidArgument", bad, err)
		}
	}
}

// A failed commit stops the store: the call is not answered as done, nothing after it is written,
// and the process is told to stop.
func TestFailedCommitStopsTheLog(t *testing.T) {
	dir := t.TempDir()
	failed := make(chan error, 1)
	st, err := OpenStore(context.Background(), filepath.Join(dir, "acquirer.db"), func(err error) { failed <- err })
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(context.Background(), st, Config{})
	if err != nil {
		t.Fatal(err)
	}
	act(t, a, auth("ok", 1, "tok"))
	if _, err := st.DB().Exec(`CREATE TRIGGER fail_insert BEFORE INSERT ON acquirer_operations WHEN NEW.seq = 2
		BEGIN SELECT RAISE(ABORT, 'injected failure'); END`); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Act(context.Background(), auth("lost", 1, "tok")); errs.KindOf(err) != errs.KindInternal {
		t.Fatalf("act whose commit fails: %v", err)
	}
	select {
	case <-failed:
	case <-time.After(5 * time.Second):
		t.Fatal("OnFail not called")
	}
	if _, err := st.DB().Exec(`DROP TRIGGER fail_insert`); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Act(context.Background(), auth("after", 1, "tok")); err == nil {
		t.Fatal("an act after a failed commit succeeded")
	}
	st.Close()
	b, _ := open(t, dir, Faults{})
	if ops, _ := b.List("", "", 0, 10); len(ops) != 1 || ops[0].Key != "ok" {
		t.Fatalf("after restart: %+v, want only the first operation", ops)
	}
}

func TestListPages(t *testing.T) {
	a, _ := open(t, t.TempDir(), Faults{})
	for i := range 7 {
		act(t, a, auth(fmt.Sprint("k", i), 1, "tok"))
		act(t, a, Request{Kind: Payout, Key: fmt.Sprint("p", i), Amount: 1, Currency: "USD", Destination: "d"})
	}
	var keys []string
	after := uint64(0)
	for range 10 {
		ops, next := a.List(Authorize, "", after, 3)
		for _, op := range ops {
			keys = append(keys, op.Key)
		}
		if next == 0 {
			break
		}
		after = next
	}
	if fmt.Sprint(keys) != "[k0 k1 k2 k3 k4 k5 k6]" {
		t.Fatalf("paged authorizations: %v", keys)
	}
	if ops, _ := a.List(Payout, "p3", 0, 3); len(ops) != 1 || ops[0].Key != "p3" {
		t.Fatalf("by key: %+v", ops)
	}
}

// A full log refuses new operations before acting (the caller may go elsewhere) and still answers
// the keys it holds.
func TestFullLogRefusesBeforeActing(t *testing.T) {
	st, err := OpenStore(context.Background(), filepath.Join(t.TempDir(), "acquirer.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := New(context.Background(), st, Config{MaxOperations: 2})
	if err != nil {
		t.Fatal(err)
	}
	act(t, a, auth("1", 1, "tok"))
	act(t, a, auth("2", 1, "tok"))
	_, _, err = a.Act(context.Background(), auth("3", 1, "tok"))
	if _, ok := errors.AsType[*NotActedError](err); !ok || errs.KindOf(err) != errs.KindResourceExhausted {
		t.Fatalf("third operation in a log of two: %v, want NotActedError of kind ResourceExhausted", err)
	}
	if _, replayed := act(t, a, auth("2", 1, "tok")); !replayed {
		t.Fatal("a held key was not replayed")
	}
}
