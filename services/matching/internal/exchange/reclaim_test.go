package exchange

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/services/matching/internal/book"
)

// holdAfterReplace is the fake risk holding the answer of a check that replaces a reservation after
// risk has made the swap, as a slow network does.
type holdAfterReplace struct {
	*fakeRisk
	hold chan struct{}
	held atomic.Int32
}

func (h *holdAfterReplace) Check(ctx context.Context, b CheckBatch) (CheckAnswer, error) {
	ans, err := h.fakeRisk.Check(ctx, b)
	for _, c := range b.Checks {
		if c.Replaces != 0 {
			h.held.Add(1)
			<-h.hold
		}
	}
	return ans, err
}

// A fill that races an amend's replacing check settles against the replaced reservation, which risk
// no longer holds: the leg is paid from the free balance and, when that is short, from another of
// the shard's reservations of the account, which risk drops. Matching must then re-sync, so that the
// order behind the dropped reservation gets it back (or is cancelled if the funds are gone); without
// a round it would rest unreserved for good.
func TestAReservationRiskReclaimedIsReSynced(t *testing.T) {
	risk := &holdAfterReplace{fakeRisk: newFakeRisk(), hold: make(chan struct{})}
	x := openTest(t, t.TempDir(), risk, fastProbe)
	defer closeTest(t, x)
	addSymbol(t, x, "BTC-USD")
	a := submit(t, x, limit("tight2", "a", book.Buy, 10000, 5)).Order
	if r := submit(t, x, limit("tight2", "d", book.Buy, 9999, 5)); r.Err != nil || r.Order.Status.closed() {
		t.Fatalf("second buy: %+v", r)
	}
	eventually(t, "the first sync", func() bool { return synced(x) })

	risk.set(func(f *fakeRisk) { f.holdSettle = true })
	amended := make(chan Result, 1)
	x.Amend(context.Background(), AmendRequest{OrderRef: OrderRef{Account: "tight2", Symbol: "BTC-USD", OrderID: a.ID}, Price: 10001},
		func(r Result) { amended <- r })
	eventually(t, "risk swapped the reservation", func() bool { return risk.held.Load() == 1 })
	if r := submit(t, x, limit("bob", "s", book.Sell, 10000, 5)); len(r.Fills) != 1 {
		t.Fatalf("the sell should fill the buy at its old price: %+v", r)
	}
	risk.set(func(f *fakeRisk) { f.holdSettle = false })
	eventually(t, "the fill settled", func() bool { b, _ := risk.filledQty("tight2"); return b == 5 })
	close(risk.hold)
	<-amended
	if n := func() int { risk.mu.Lock(); defer risk.mu.Unlock(); return risk.reclaimed }(); n != 1 {
		t.Fatalf("risk reclaimed %d reservations, want 1: the scenario did not happen", n)
	}

	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if synced(x) && sameReservations(risk.openQty(), openOrders(t, x)) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got, want := risk.openQty(), openOrders(t, x); !sameReservations(got, want) {
		t.Fatalf("risk holds %v, the open orders need %v", got, want)
	}
	if haltedShards(x) != 0 {
		t.Fatalf("halted: %+v", x.SettlementStatus())
	}
	if err := risk.conserved(); err != nil {
		t.Fatal(err)
	}
}
