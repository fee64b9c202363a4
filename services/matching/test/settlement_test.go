package matching_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
	"github.com/bourse-dev/bourse/pkg/testenv"
)

// settlementPlatform is a real Consul, risk and matching whose risk can be killed and restarted on
// the same data.
type settlementPlatform struct {
	*platform
	riskBin, riskDir string
}

func startSettlementPlatform(t *testing.T) *settlementPlatform {
	t.Helper()
	sp := &settlementPlatform{platform: &platform{agent: testenv.StartConsul(t), dataDir: filepath.Join(t.TempDir(), "matching")},
		riskBin: testenv.Build(t, riskPkg), riskDir: filepath.Join(t.TempDir(), "risk")}
	sp.startRisk(t)
	setupRisk(t, sp.risk)
	sp.matchingBin = testenv.Build(t, matchingPkg)
	sp.startMatching(t)
	sp.addSymbol(t)
	return sp
}

func (sp *settlementPlatform) startRisk(t *testing.T) {
	t.Helper()
	sp.riskProc = testenv.StartService(t, sp.riskBin, nil,
		"--consul-addr="+sp.agent.Addr, "--api-keys="+apiKeys, "--check-interval=1s", "--data-dir="+sp.riskDir)
	sp.risk = riskv1.NewRiskServiceClient(dial(t, sp.riskProc.GRPCAddr, adminKey))
	testenv.WaitFor(t, 20*time.Second, "risk passing in consul", func() bool { return len(sp.agent.Passing(t, "risk")) == 1 })
}

func (sp *settlementPlatform) killRisk(t *testing.T) {
	t.Helper()
	sp.riskProc.Signal(syscall.SIGKILL)
	if !sp.riskProc.WaitExit(20 * time.Second) {
		t.Fatal("risk did not stop")
	}
	testenv.WaitFor(t, 20*time.Second, "risk gone from consul", func() bool { return len(sp.agent.Passing(t, "risk")) == 0 })
}

// settled waits until every shard of matching has settled its journal and re-synced with risk.
func (sp *settlementPlatform) settled(t *testing.T) {
	t.Helper()
	testenv.WaitFor(t, 30*time.Second, "matching settled with risk", func() bool {
		resp, err := sp.admin.GetSettlementStatus(context.Background(), &matchingv1.GetSettlementStatusRequest{})
		if err != nil {
			return false
		}
		for _, s := range resp.GetShards() {
			if s.GetHalted() {
				t.Fatalf("shard %d halted: %s", s.GetShard(), s.GetHaltReason())
			}
			if s.GetSettledSeq() < s.GetJournalSeq() || s.GetQueued() > 0 || s.GetSyncing() {
				return false
			}
		}
		return true
	})
}

// checkInvariants asserts I1 (risk's audit: balances = credits − debits, reserved = reservations),
// I2 (alice's and bob's reservations are exactly their open orders' remaining quantities) and I3
// (risk's positions equal the fills matching reports for the orders in cids).
func (sp *settlementPlatform) checkInvariants(t *testing.T, cids map[string][]string) {
	t.Helper()
	ctx := context.Background()
	audit := must(t)(sp.risk.Audit(ctx, &riskv1.AuditRequest{})).(*riskv1.AuditResponse)
	if !audit.GetConsistent() {
		t.Fatalf("I1/reservations: %s", audit.GetProblem())
	}
	for _, acct := range []string{"alice", "bob"} {
		cl := sp.alice
		if acct == "bob" {
			cl = sp.bob
		}
		filled, open := decimal.Zero, map[uint64]string{} // remaining quantity by order id
		for _, cid := range cids[acct] {
			resp, err := cl.GetOrder(ctx, &matchingv1.GetOrderRequest{AccountId: acct, Symbol: "BTC-USD", ClientOrderId: cid})
			if err != nil {
				continue // never acknowledged
			}
			o := resp.GetOrder()
			q := decimal.RequireFromString(o.GetFilledQuantity())
			if acct == "bob" {
				q = q.Neg()
			}
			filled = filled.Add(q)
			switch o.GetStatus() {
			case matchingv1.OrderStatus_ORDER_STATUS_NEW, matchingv1.OrderStatus_ORDER_STATUS_PARTIALLY_FILLED:
				open[o.GetOrderId()] = o.GetRemainingQuantity()
			}
		}
		if pos := decimal.RequireFromString(position(t, sp.risk, acct)); !pos.Equal(filled) {
			t.Fatalf("I3 %s: position in risk %s, fills in matching %s", acct, pos, filled)
		}
		acc := must(t)(sp.risk.GetAccount(ctx, &riskv1.GetAccountRequest{AccountId: acct})).(*riskv1.GetAccountResponse)
		var held, want decimal.Decimal
		for _, r := range acc.GetAccount().GetReservations() {
			held = held.Add(decimal.RequireFromString(r.GetQuantity()))
		}
		for _, q := range open {
			want = want.Add(decimal.RequireFromString(q))
		}
		if len(acc.GetAccount().GetReservations()) != len(open) || !held.Equal(want) {
			t.Fatalf("I2 %s: risk holds %d reservations for %s, the %d open orders need %s", acct,
				len(acc.GetAccount().GetReservations()), held, len(open), want)
		}
	}
}

// Scenario 2 with the real services: after risk is killed and restarted, matching notices the new
// incarnation and restores every resting order's reservation, even though orders are checked in
// between; the funds behind them cannot be withdrawn.
func TestRiskRestartRestoresReservations(t *testing.T) {
	sp := startSettlementPlatform(t)
	ctx := context.Background()
	cids := map[string][]string{}
	for i, price := range []string{"40000", "41000", "42000"} {
		cid := fmt.Sprintf("r%d", i)
		must(t)(sp.alice.SubmitOrder(ctx, limitOrder("alice", cid, buy, price, "0.5")))
		cids["alice"] = append(cids["alice"], cid)
	}
	sp.settled(t)
	sp.killRisk(t)
	sp.startRisk(t)
	// bob's order is checked by the new risk before (or while) matching re-syncs.
	testenv.WaitFor(t, 20*time.Second, "an order through the restarted risk", func() bool {
		_, err := sp.bob.SubmitOrder(ctx, limitOrder("bob", "s1", sell, "60000", "0.2"))
		return err == nil
	})
	cids["bob"] = append(cids["bob"], "s1")
	sp.settled(t)
	sp.checkInvariants(t, cids)
	// alice's 100,000,000 USD less what her three orders hold (61,561.5 with fees) is all she may take.
	_, err := sp.risk.Debit(ctx, &riskv1.DebitRequest{AccountId: "alice", AssetId: "USD", Amount: "100000000", Ref: "w1"})
	if err == nil {
		t.Fatal("alice withdrew the funds her resting orders hold")
	}
}

// Scenario 1 (and I1–I3) with the real services: trades are acknowledged while both processes are
// SIGKILLed together, possibly before their settlement reached risk; after restarting both (matching
// first, so its recovery waits for risk) every trade is settled once, both legs, and the resting
// orders are reserved exactly for their remaining quantity.
func TestJointCrashSettlesEachTradeOnce(t *testing.T) {
	sp := startSettlementPlatform(t)
	ctx := context.Background()
	cids := map[string][]string{}
	var mu sync.Mutex
	for round := range 3 {
		// alice rests buys; bob sells into them from several clients at once.
		for i := range 5 {
			cid := fmt.Sprintf("b%d-%d", round, i)
			must(t)(sp.alice.SubmitOrder(ctx, limitOrder("alice", cid, buy, fmt.Sprintf("%d", 50000-i*5), "0.05")))
			cids["alice"] = append(cids["alice"], cid)
		}
		var wg sync.WaitGroup
		filledAck := make(chan struct{}, 16)
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 50; i++ {
					cid := fmt.Sprintf("s%d-%d-%d", round, w, i)
					mu.Lock()
					cids["bob"] = append(cids["bob"], cid)
					mu.Unlock()
					cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
					r, err := sp.bob.SubmitOrder(cctx, limitOrder("bob", cid, sell, "49980", "0.01"))
					cancel()
					if err != nil {
						return // the processes are gone
					}
					if len(r.GetFills()) > 0 {
						select {
						case filledAck <- struct{}{}:
						default:
						}
					}
				}
			}()
		}
		// Kill both the moment a fill is acknowledged: its settlement may still be in flight.
		select {
		case <-filledAck:
		case <-time.After(20 * time.Second):
			t.Fatal("no fill acknowledged")
		}
		sp.matching.Signal(syscall.SIGKILL)
		sp.riskProc.Signal(syscall.SIGKILL)
		wg.Wait()
		if !sp.matching.WaitExit(20*time.Second) || !sp.riskProc.WaitExit(20*time.Second) {
			t.Fatal("processes did not stop")
		}
		testenv.WaitFor(t, 20*time.Second, "risk gone from consul", func() bool { return len(sp.agent.Passing(t, "risk")) == 0 })
		sp.startMatching(t)
		sp.startRisk(t)
		sp.settled(t)
		sp.checkInvariants(t, cids)
	}
}
