package acquirerproc_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/bourse-dev/bourse/pkg/client"
	acquirerv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/acquirer/v1"
	"github.com/bourse-dev/bourse/pkg/resolver"
	"github.com/bourse-dev/bourse/pkg/testenv"
	"github.com/bourse-dev/bourse/services/payment/internal/processor"
	"github.com/bourse-dev/bourse/services/payment/internal/processor/acquirerproc"
)

func dial(t *testing.T, target string, timeout time.Duration) *acquirerproc.Client {
	t.Helper()
	return dialTB(t, target, timeout)
}

func dialTB(t testing.TB, target string, timeout time.Duration) *acquirerproc.Client {
	t.Helper()
	c, err := acquirerproc.Dial(target, client.Options{APIKey: testenv.AcquirerPaymentKey}, acquirerproc.Config{CallTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func setFaults(t *testing.T, a *testenv.Acquirer, f *acquirerv1.Faults) {
	t.Helper()
	if _, err := a.Admin.SetFaults(context.Background(), &acquirerv1.SetFaultsRequest{Faults: f}); err != nil {
		t.Fatal(err)
	}
}

// operations lists what the acquirer durably did, every page.
func operations(t *testing.T, a *testenv.Acquirer, kind acquirerv1.OperationKind) []*acquirerv1.Operation {
	t.Helper()
	var out []*acquirerv1.Operation
	req := &acquirerv1.ListOperationsRequest{Kind: kind, PageSize: 1000}
	for {
		resp, err := a.Admin.ListOperations(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, resp.GetOperations()...)
		if resp.GetNextPageToken() == "" {
			return out
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

func authorize(key string, amount int64, token string) processor.AuthorizeRequest {
	return processor.AuthorizeRequest{Key: key, Money: processor.Money{Amount: amount, Currency: "USD"}, Method: "card",
		PaymentToken: token, Metadata: map[string]string{"payment_id": "pay_" + key}}
}

// lookupEventually asks until the acquirer answers (the client may still be reconnecting), as
// payment's janitor does with its backoff.
func lookupEventually(t *testing.T, c *acquirerproc.Client, op processor.Operation, key string) processor.Result {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := c.Lookup(context.Background(), op, key)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != processor.Unknown {
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("lookup %s %s: still %+v after 20s", op, key, res)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func want(t *testing.T, what string, res processor.Result, err error, status processor.Status) {
	t.Helper()
	if err != nil || res.Status != status {
		t.Fatalf("%s: %v %+v (err %v), want %v", what, res.Status, res, err, status)
	}
}

// SIGKILL between the durable outcome and the answer: the caller sees Unknown; after the restart
// Lookup says Approved, a retry with the same key answers the same operation, and the acquirer acted
// once.
func TestKilledBetweenActingAndAnsweringActsOnce(t *testing.T) {
	a := testenv.StartAcquirer(t, testenv.AcquirerOptions{})
	setFaults(t, a, &acquirerv1.Faults{AnswerDelay: durationpb.New(time.Minute), Kinds: []acquirerv1.OperationKind{acquirerv1.OperationKind_OPERATION_KIND_AUTHORIZE}})
	c := dial(t, a.GRPCAddr, 2*time.Minute)
	ctx := context.Background()

	type answer struct {
		res processor.Result
		err error
	}
	done := make(chan answer, 1)
	go func() {
		res, err := c.Authorize(ctx, authorize("att-1", 1999, "tok_visa"))
		done <- answer{res, err}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for len(operations(t, a, acquirerv1.OperationKind_OPERATION_KIND_AUTHORIZE)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the authorization never became durable")
		}
		time.Sleep(10 * time.Millisecond)
	}
	a.Kill(t)
	got := <-done
	want(t, "authorize cut by SIGKILL after acting", got.res, got.err, processor.Unknown)

	a = a.Restart(t)
	look := lookupEventually(t, c, processor.OpAuthorize, "att-1")
	want(t, "lookup after restart", look, nil, processor.Approved)
	retry, err := c.Authorize(ctx, authorize("att-1", 1999, "tok_visa"))
	want(t, "retry with the same key", retry, err, processor.Approved)
	if retry.ProcessorRef != look.ProcessorRef || retry.Money.Amount != 1999 || !retry.At.Equal(look.At) {
		t.Fatalf("retry answered %+v, lookup %+v: want the one operation", retry, look)
	}
	if ops := operations(t, a, 0); len(ops) != 1 {
		t.Fatalf("the acquirer holds %d operations, want 1: %v", len(ops), ops)
	}
	stats, err := a.Admin.GetStats(ctx, &acquirerv1.GetStatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if k := stats.GetKinds()[0]; k.GetReplayed() != 1 || k.GetApproved() != 0 || k.GetStored() != 1 {
		t.Fatalf("stats of the new process: %v, want one replay and nothing newly approved", k)
	}
}

// An acquirer that is not there is NotReached, and the same client gets through once it is back.
func TestAcquirerDownIsNotReached(t *testing.T) {
	a := testenv.StartAcquirer(t, testenv.AcquirerOptions{})
	c := dial(t, a.GRPCAddr, 5*time.Second)
	ctx := context.Background()
	res, err := c.Authorize(ctx, authorize("warm", 1, "tok"))
	want(t, "authorize while up", res, err, processor.Approved)

	a.Kill(t)
	// A call that races the client noticing the dropped connection may be written to it, and is then
	// rightly Unknown; give the client a moment to see the connection close.
	time.Sleep(200 * time.Millisecond)
	for i := range 3 { // the first call after the drop, and calls while reconnecting
		res, err := c.Authorize(ctx, authorize(fmt.Sprint("down-", i), 1, "tok"))
		want(t, fmt.Sprintf("authorize %d while down", i), res, err, processor.NotReached)
	}
	look, err := c.Lookup(ctx, processor.OpAuthorize, "warm")
	want(t, "lookup while down", look, err, processor.Unknown)

	a = a.Restart(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := c.Authorize(ctx, authorize("down-0", 1, "tok"))
		if err == nil && res.Status == processor.Approved {
			break
		}
		if res.Status != processor.NotReached || time.Now().After(deadline) {
			t.Fatalf("authorize after restart: %+v %v", res, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ops := operations(t, a, 0); len(ops) != 2 {
		t.Fatalf("%d operations, want warm and down-0 only: %v", len(ops), ops)
	}

	// Through Consul: no instance registered is NotReached too.
	agent := testenv.StartConsul(t)
	b, err := acquirerproc.Dial("consul:///acquirer", client.Options{APIKey: testenv.AcquirerPaymentKey,
		Resolver: resolver.NewBuilder(agent.Client, slog.Default())}, acquirerproc.Config{CallTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	res, err = b.Authorize(ctx, authorize("nobody", 1, "tok"))
	want(t, "authorize with no instance in Consul", res, err, processor.NotReached)
	testenv.StartAcquirer(t, testenv.AcquirerOptions{Consul: agent})
	deadline = time.Now().Add(30 * time.Second)
	for {
		res, err := b.Authorize(ctx, authorize("via-consul", 1, "tok"))
		if err == nil && res.Status == processor.Approved {
			break
		}
		if res.Status != processor.NotReached || time.Now().After(deadline) {
			t.Fatalf("authorize through consul:///acquirer: %+v %v", res, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Faults: a failure before acting is NotReached and stores nothing; a lost answer (as a reset, or
// no answer until the deadline) is Unknown and Lookup finds the approval; latency past the call's
// deadline is Unknown and the acquirer never acts on it.
func TestClassificationUnderFaults(t *testing.T) {
	a := testenv.StartAcquirer(t, testenv.AcquirerOptions{})
	c := dial(t, a.GRPCAddr, 2*time.Second)
	ctx := context.Background()

	setFaults(t, a, &acquirerv1.Faults{FailBeforeProbability: 1})
	res, err := c.Authorize(ctx, authorize("fail", 1, "tok"))
	want(t, "failure before acting", res, err, processor.NotReached)
	look, err := c.Lookup(ctx, processor.OpAuthorize, "fail")
	want(t, "lookup after a failure before acting", look, err, processor.NotFound)

	setFaults(t, a, &acquirerv1.Faults{LoseAnswerProbability: 1})
	res, err = c.Authorize(ctx, authorize("lost", 2, "tok"))
	want(t, "answer lost as a reset", res, err, processor.Unknown)
	look, err = c.Lookup(ctx, processor.OpAuthorize, "lost")
	want(t, "lookup after a lost answer", look, err, processor.Approved)

	setFaults(t, a, &acquirerv1.Faults{LoseAnswerProbability: 1, LoseMode: acquirerv1.LoseMode_LOSE_MODE_HANG})
	short := dial(t, a.GRPCAddr, 300*time.Millisecond)
	res, err = short.Payout(ctx, processor.PayoutRequest{Key: "po-hang", Money: processor.Money{Amount: 5, Currency: "EUR"}, Destination: "ba_1"})
	want(t, "answer never sent", res, err, processor.Unknown)
	look, err = c.Lookup(ctx, processor.OpPayout, "po-hang")
	want(t, "lookup after a hung answer", look, err, processor.Approved)

	const latency = 400 * time.Millisecond
	setFaults(t, a, &acquirerv1.Faults{Latency: durationpb.New(latency)})
	start := time.Now()
	res, err = c.Authorize(ctx, authorize("slow", 3, "tok"))
	want(t, "authorize with latency", res, err, processor.Approved)
	if took := time.Since(start); took < latency {
		t.Fatalf("authorize with %s latency answered in %s", latency, took)
	}
	tooShort := dial(t, a.GRPCAddr, 100*time.Millisecond)
	res, err = tooShort.Authorize(ctx, authorize("too-slow", 4, "tok"))
	// Whichever deadline fires first decides the answer: the client's (Unknown: it cannot know), or
	// the acquirer's, which arrives with NOT_ACTED (NotReached: it says it did not act, and never will).
	if err != nil || (res.Status != processor.Unknown && res.Status != processor.NotReached) {
		t.Fatalf("deadline inside the latency: %+v %v, want Unknown or NotReached", res, err)
	}
	time.Sleep(latency + 200*time.Millisecond) // past the point where it would have acted
	setFaults(t, a, &acquirerv1.Faults{})
	look, err = c.Lookup(ctx, processor.OpAuthorize, "too-slow")
	want(t, "lookup after the deadline passed", look, err, processor.NotFound)

	// Wrong credentials: refused before any handler runs.
	stranger, err := acquirerproc.Dial(a.GRPCAddr, client.Options{APIKey: "nobody"}, acquirerproc.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	res, err = stranger.Authorize(ctx, authorize("stranger", 1, "tok"))
	want(t, "unknown key", res, err, processor.NotReached)

	keys := map[string]bool{}
	for _, op := range operations(t, a, 0) {
		keys[op.GetKey()] = true
	}
	if fmt.Sprint(keys) != "map[lost:true po-hang:true slow:true]" {
		t.Fatalf("operations stored: %v, want lost, po-hang and slow", keys)
	}
}

// Declines are answers, not errors, and the acquirer keeps captures within authorizations and
// refunds within captures.
func TestDeclinesAndBounds(t *testing.T) {
	a := testenv.StartAcquirer(t, testenv.AcquirerOptions{Args: []string{"--fault-decline=token=tok_stolen,code=stolen_card;min=1000000,code=insufficient_funds"}})
	c := dial(t, a.GRPCAddr, 5*time.Second)
	ctx := context.Background()
	usd := func(n int64) processor.Money { return processor.Money{Amount: n, Currency: "USD"} }

	res, err := c.Authorize(ctx, authorize("stolen", 10, "tok_stolen"))
	want(t, "stolen card", res, err, processor.Declined)
	if res.DeclineCode != "stolen_card" {
		t.Fatalf("decline code %q, want stolen_card", res.DeclineCode)
	}
	res, err = c.Authorize(ctx, authorize("big", 1_000_000, "tok"))
	if want(t, "large amount", res, err, processor.Declined); res.DeclineCode != "insufficient_funds" {
		t.Fatalf("decline code %q", res.DeclineCode)
	}
	look, err := c.Lookup(ctx, processor.OpAuthorize, "big")
	if want(t, "lookup of a decline", look, err, processor.Declined); look.DeclineCode != "insufficient_funds" {
		t.Fatalf("lookup decline code %q", look.DeclineCode)
	}

	auth, err := c.Authorize(ctx, authorize("a", 1000, "tok"))
	want(t, "authorize", auth, err, processor.Approved)
	steps := []struct {
		name string
		call func() (processor.Result, error)
		want processor.Status
		code string
	}{
		{"capture 600", func() (processor.Result, error) {
			return c.Capture(ctx, processor.CaptureRequest{Key: "a:capture:1", AuthorizeKey: "a", Money: usd(600)})
		}, processor.Approved, ""},
		{"capture 401 more", func() (processor.Result, error) {
			return c.Capture(ctx, processor.CaptureRequest{Key: "a:capture:2", AuthorizeKey: "a", Money: usd(401)})
		}, processor.Declined, "amount_exceeds_authorization"},
		{"void after a capture", func() (processor.Result, error) {
			return c.Void(ctx, processor.VoidRequest{Key: "a:void", AuthorizeKey: "a"})
		}, processor.Declined, "already_captured"},
		{"refund 600", func() (processor.Result, error) {
			return c.Refund(ctx, processor.RefundRequest{Key: "re-1", AuthorizeKey: "a", Money: usd(600)})
		}, processor.Approved, ""},
		{"refund 1 more", func() (processor.Result, error) {
			return c.Refund(ctx, processor.RefundRequest{Key: "re-2", AuthorizeKey: "a", Money: usd(1)})
		}, processor.Declined, "amount_exceeds_captured"},
		{"capture of an unknown authorization", func() (processor.Result, error) {
			return c.Capture(ctx, processor.CaptureRequest{Key: "x:capture", AuthorizeKey: "x", Money: usd(1)})
		}, processor.Declined, "authorization_not_found"},
		{"payout", func() (processor.Result, error) {
			return c.Payout(ctx, processor.PayoutRequest{Key: "po-1", Money: usd(50), Destination: "ba_1"})
		}, processor.Approved, ""},
	}
	for _, s := range steps {
		res, err := s.call()
		if want(t, s.name, res, err, s.want); res.DeclineCode != s.code {
			t.Fatalf("%s: decline code %q, want %q", s.name, res.DeclineCode, s.code)
		}
	}

	// The same key with other parameters: an error, and Unknown (the first use was approved).
	res, err = c.Authorize(ctx, authorize("a", 1001, "tok"))
	if err == nil || res.Status != processor.Unknown {
		t.Fatalf("key reused with another amount: %+v %v, want Unknown and an error", res, err)
	}
	// A malformed request is refused before acting.
	res, err = c.Authorize(ctx, processor.AuthorizeRequest{Key: "bad", Money: usd(1), Method: "card"})
	if err == nil || res.Status != processor.NotReached {
		t.Fatalf("authorize without a token: %+v %v, want NotReached and an error", res, err)
	}

	// The same counts on /metrics.
	resp, err := http.Get("http://" + a.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		`acquirer_operations_total{kind="authorize",outcome="approved"} 1`,
		`acquirer_operations_total{kind="authorize",outcome="declined"} 2`,
		`acquirer_operations_total{kind="capture",outcome="declined"} 2`,
		`acquirer_key_conflicts_total{kind="authorize"} 1`,
		`acquirer_lookups_total 1`,
	} {
		if !strings.Contains(string(body), line+"\n") {
			t.Errorf("/metrics lacks %s", line)
		}
	}
}

// Randomized runs under every fault at once: each key is retried until it has an outcome (after an
// Unknown, by turns a Lookup or the same call again, as payment's janitor and retries would), and in
// the end the acquirer acted exactly once per key, with the outcome every answer reported.
// ACQUIRER_RUNS sets the number of keys (default 150; make acquirer-faults runs 5000).
func TestRandomFaultsNeverActTwice(t *testing.T) {
	runs := 150
	if s := os.Getenv("ACQUIRER_RUNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("ACQUIRER_RUNS=%q", s)
		}
		runs = n
	}
	a := testenv.StartAcquirer(t, testenv.AcquirerOptions{})
	setFaults(t, a, &acquirerv1.Faults{FailBeforeProbability: 0.3, LoseAnswerProbability: 0.3, Seed: 7,
		DeclineRules: []*acquirerv1.DeclineRule{{MinAmount: 900}},
		Latency:      durationpb.New(time.Millisecond), LatencyJitter: durationpb.New(4 * time.Millisecond)})
	c := dial(t, a.GRPCAddr, 5*time.Second)
	ctx := context.Background()

	outcomes := make([]processor.Result, runs)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range runs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			req := authorize(fmt.Sprint("k", i), int64(100+i*7%1000), "tok")
			for attempt := range 50 {
				res, err := c.Authorize(ctx, req)
				if err != nil {
					t.Errorf("%s attempt %d: %v", req.Key, attempt, err)
					return
				}
				switch res.Status {
				case processor.Approved, processor.Declined:
					outcomes[i] = res
					return
				case processor.Unknown:
					if (i+attempt)%2 == 1 {
						continue // the same call again: a replay once it has acted
					}
					look, _ := c.Lookup(ctx, processor.OpAuthorize, req.Key)
					if look.Status == processor.Approved || look.Status == processor.Declined {
						outcomes[i] = look
						return
					}
				}
			}
			t.Errorf("%s: no outcome in 50 attempts", req.Key)
		})
	}
	wg.Wait()
	ops := operations(t, a, acquirerv1.OperationKind_OPERATION_KIND_AUTHORIZE)
	if len(ops) != runs {
		t.Fatalf("%d authorizations stored for %d keys", len(ops), runs)
	}
	for _, op := range ops {
		i, _ := strconv.Atoi(op.GetKey()[1:])
		if got := outcomes[i]; got.ProcessorRef != op.GetRef() || (got.Status == processor.Approved) != (op.GetOutcome() == acquirerv1.Outcome_OUTCOME_APPROVED) {
			t.Fatalf("key %s: answered %+v, the acquirer holds %v", op.GetKey(), got, op)
		}
	}
	stats, err := a.Admin.GetStats(ctx, &acquirerv1.GetStatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	k := stats.GetKinds()[0]
	if k.GetFailedBefore() == 0 || k.GetAnswersLost() == 0 || k.GetDeclined() == 0 || k.GetReplayed() == 0 {
		t.Fatalf("stats %v: every fault should have happened", k)
	}
	t.Logf("%d keys: %d failed before acting, %d answers lost, %d replays", runs, k.GetFailedBefore(), k.GetAnswersLost(), k.GetReplayed())
}
