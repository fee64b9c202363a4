package payment_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	acquirerv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/acquirer/v1"
	paymentv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/payment/v1"
)

// chaosDefaultCrashes is the number of crash points of a plain `go test` (and so `make test`);
// `make payment-chaos CRASHES=N SEED=S` runs more.
const chaosDefaultCrashes = 8

// chaosFaults are the acquirer's random faults during the load: a tenth of the acting calls refused
// before acting (payment falls back, or the saga waits), another tenth acted on with the answer lost
// (UNKNOWN, settled by the janitor's lookup or re-send).
const chaosFaults = "--fault-fail-before=0.1 --fault-lose-answer=0.1"

// chaosSettleTimeout bounds the wait for the janitor and the outbox once the load has stopped, plus
// as long again as the load ran. The tail is usually an outbox row a killed payment had claimed, or
// one whose delivery was cut off by PostgreSQL's crash (its lease must run out), or a step retried with backoff: a step's backoff doubles with each failed
// try over the whole load, so its next try may be as far off as its age at the last failure.
const chaosSettleTimeout = 120 * time.Second

func chaosParams(t *testing.T, defaultCrashes, kinds int) (crashes int, seed uint64) {
	t.Helper()
	crashes = defaultCrashes
	if s := os.Getenv("PAYMENT_CHAOS_CRASHES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < kinds {
			t.Fatalf("PAYMENT_CHAOS_CRASHES=%q: want a number ≥ %d (one crash point of each kind)", s, kinds)
		}
		crashes = n
	}
	seed = uint64(time.Now().UnixNano())
	if s := os.Getenv("PAYMENT_CHAOS_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("PAYMENT_CHAOS_SEED=%q: want an unsigned integer", s)
		}
		seed = n
	}
	return crashes, seed
}

// chaosSchedule draws the kind of each of n crash points from kinds; the first len(kinds) are one
// of each in random order, so every run has all of them (n is at least len(kinds)).
func chaosSchedule(rng *rand.Rand, n int, kinds []crashKind) []crashKind {
	out := make([]crashKind, n)
	for i := range out {
		out[i] = kinds[rng.IntN(len(kinds))]
	}
	first := slices.Clone(kinds)
	rng.Shuffle(len(first), func(i, j int) { first[i], first[j] = first[j], first[i] })
	copy(out, first)
	return out
}

// TestPaymentChaos: payment (on SQLite), the acquirer and risk as real processes under a load of
// deposits (automatic and manual capture, captured in full or in part, or canceled), refunds (partial,
// full, racing on one payment), payouts (paid, declined by the acquirer, refused by risk) and replays,
// by clients that retry with the same idempotency key after any error, with the acquirer's random
// faults on. At seeded random moments it SIGKILLs payment, the acquirer, risk, payment and the
// acquirer, or all three, and restarts them on their data. Then the faults stop, the janitor and the
// outbox settle everything, and the invariants I1–I8 of the README are checked through the services'
// own APIs. PAYMENT_CHAOS_CRASHES sets the number of crash points, PAYMENT_CHAOS_SEED repeats a run's
// schedule and load.
func TestPaymentChaos(t *testing.T) { runPaymentChaos(t, false, chaosDefaultCrashes) }

// TestPaymentChaosPostgres is the same with two payment replicas on PostgreSQL, where the PostgreSQL
// server is SIGKILLed too: alone (the replicas stay up through the outage), with both replicas, and
// with everything, then restarted on its data (crash recovery). One crash point of each kind by
// default.
func TestPaymentChaosPostgres(t *testing.T) { runPaymentChaos(t, true, len(crashKindsOf(true))) }

func runPaymentChaos(t *testing.T, postgres bool, defaultCrashes int) {
	kinds := crashKindsOf(postgres)
	crashes, seed := chaosParams(t, defaultCrashes, len(kinds))
	t.Logf("payment chaos: %d crash points, seed %d (repeat with PAYMENT_CHAOS_SEED=%d)", crashes, seed, seed)
	start := time.Now()
	c := startChaosStack(t, postgres, seed, chaosFaults)
	book := newChaosBook()
	load := &chaosLoad{stack: c, book: book, seed: seed, workers: 6}
	rng := rand.New(rand.NewPCG(seed, 0x6368616f73))
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d (repeat with PAYMENT_CHAOS_SEED=%d PAYMENT_CHAOS_CRASHES=%d): %s\nload: %s\n%s",
			seed, seed, crashes, fmt.Sprintf(format, args...), book.summary(), c.logTails())
	}

	load.start()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			load.stop() // a failure while loading ends the workers before the processes go
		}
	})
	counts := map[crashKind]int{}
	for i, kind := range chaosSchedule(rng, crashes, kinds) {
		time.Sleep(time.Second + time.Duration(rng.Int64N(int64(2*time.Second))))
		down := time.Duration(rng.Int64N(int64(500 * time.Millisecond)))
		t.Logf("crash %d of %d: SIGKILL %s (down %v) at %v", i+1, crashes, kind, down.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		c.crash(t, kind, down)
		counts[kind]++
	}
	time.Sleep(2 * time.Second) // load on the recovered services too
	load.stop()
	stopped = true
	t.Logf("load stopped at %v: %s", time.Since(start).Round(time.Millisecond), book.summary())

	// No more random faults; the business declines stay, so what is re-sent is decided as before.
	if _, err := c.acq().SetFaults(t.Context(), &acquirerv1.SetFaultsRequest{Faults: &acquirerv1.Faults{DeclineRules: []*acquirerv1.DeclineRule{
		{Token: "tok_decline", Kinds: []acquirerv1.OperationKind{acquirerv1.OperationKind_OPERATION_KIND_AUTHORIZE}, Code: "card_declined"},
		{Token: "ba_bad", Kinds: []acquirerv1.OperationKind{acquirerv1.OperationKind_OPERATION_KIND_PAYOUT}, Code: "account_closed"},
	}}}); err != nil {
		fail("turning the faults off: %v", err)
	}
	st, err := settleChaos(t.Context(), t, c, chaosSettleTimeout+time.Since(start))
	if err != nil {
		fail("%v", err)
	}
	t.Logf("settled at %v", time.Since(start).Round(time.Millisecond))
	c.mustRun(t)
	if v := checkChaosInvariants(st, book); len(v) > 0 {
		sort.Strings(v)
		if len(v) > 30 {
			v = append(v[:30], fmt.Sprintf("... and %d more", len(v)-30))
		}
		if strings.Contains(strings.Join(v, "\n"), "I4: risk holds") {
			v = append(v, riskAudit(t.Context(), c), book.keyCounts())
			for _, a := range chaosAccounts {
				v = append(v, riskRefEvidence(t.Context(), c, st, a))
			}
		}
		fail("invariants violated after %v crashes:\n%s", counts, strings.Join(v, "\n"))
	}

	// The run must have exercised what it claims to.
	n := tally(st)
	t.Logf("chaos done in %v: crashes %v; %s", time.Since(start).Round(time.Second), counts, n)
	for what, got := range map[string]int{"succeeded deposits": n.succeeded, "failed deposits": n.failed, "manual captures": n.manual,
		"canceled deposits": n.canceled, "succeeded refunds": n.refunds, "succeeded payouts": n.payouts, "failed payouts": n.payoutsFailed, "deposits captured at the fallback": n.fellBack} {
		if got == 0 {
			fail("no %s: the load did not exercise every path (%s)", what, n)
		}
	}
}

// settleChaos polls until nothing is in a middle state (every payment, attempt, refund and payout
// final, every captured payment credited in risk), at most bound.
func settleChaos(ctx context.Context, t *testing.T, c *chaosStack, bound time.Duration) (*chaosState, error) {
	start := time.Now()
	deadline, report := start.Add(bound), start.Add(10*time.Second)
	var last []string
	var lastErr error
	// A read of a long run's state takes longer: a read that ran out of time gets twice as long.
	readTimeout := 30 * time.Second
	for time.Now().Before(deadline) {
		rctx, cancel := context.WithTimeout(ctx, readTimeout)
		st, err := readChaosState(rctx, c)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded {
			readTimeout *= 2
		}
		if lastErr = err; err == nil {
			if last = st.unsettled(); len(last) == 0 {
				return st, nil
			}
		}
		if time.Now().After(report) {
			sort.Strings(last)
			if lastErr != nil {
				t.Logf("settling for %v: reading the state: %v", time.Since(start).Round(time.Second), lastErr)
			} else {
				t.Logf("settling for %v: %d left, e.g. %v", time.Since(start).Round(time.Second), len(last), last[:min(3, len(last))])
			}
			report = report.Add(10 * time.Second)
		}
		time.Sleep(250 * time.Millisecond)
	}
	sort.Strings(last)
	if len(last) > 20 {
		last = append(last[:20], fmt.Sprintf("... and %d more", len(last)-20))
	}
	return nil, fmt.Errorf("not settled %v after the load (last read error: %v):\n%s", bound.Round(time.Second), lastErr, strings.Join(last, "\n"))
}

type chaosTally struct {
	succeeded, failed, manual, canceled, refunds, refundsFailed, payouts, payoutsFailed, fellBack int
}

func (n chaosTally) String() string {
	return fmt.Sprintf("deposits %d captured (%d manually, %d at the fallback), %d failed, %d canceled; refunds %d succeeded, %d failed; payouts %d succeeded, %d failed",
		n.succeeded, n.manual, n.fellBack, n.failed, n.canceled, n.refunds, n.refundsFailed, n.payouts, n.payoutsFailed)
}

func tally(s *chaosState) chaosTally {
	var n chaosTally
	for _, p := range s.payments {
		switch {
		case capturedStatus(p.GetStatus()):
			n.succeeded++
			if p.GetCaptureMethod() == paymentv1.CaptureMethod_CAPTURE_METHOD_MANUAL {
				n.manual++
			}
			for _, a := range p.GetAttempts() {
				if a.GetStatus() == paymentv1.AttemptStatus_ATTEMPT_STATUS_CAPTURED && a.GetProcessor() != "acquirer" {
					n.fellBack++
				}
			}
		case p.GetStatus() == paymentv1.PaymentStatus_PAYMENT_STATUS_FAILED:
			n.failed++
		case p.GetStatus() == paymentv1.PaymentStatus_PAYMENT_STATUS_CANCELED:
			n.canceled++
		}
	}
	for _, r := range s.refunds {
		if r.GetStatus() == paymentv1.RefundStatus_REFUND_STATUS_SUCCEEDED {
			n.refunds++
		} else {
			n.refundsFailed++
		}
	}
	for _, x := range s.payouts {
		if x.GetStatus() == paymentv1.PayoutStatus_PAYOUT_STATUS_SUCCEEDED {
			n.payouts++
		} else {
			n.payoutsFailed++
		}
	}
	return n
}
