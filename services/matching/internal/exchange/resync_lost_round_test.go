package exchange

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/errs"
	"github.com/bourse-dev/bourse/services/matching/internal/book"
)

// syncBlocker is the fake risk with its SyncReservations down while block is set, as a risk process
// that keeps restarting is.
type syncBlocker struct {
	*fakeRisk
	block atomic.Bool
	fails atomic.Int32
}

func (s *syncBlocker) Sync(ctx context.Context, b SyncBatch) (SyncAnswer, error) {
	if s.block.Load() {
		s.fails.Add(1)
		return SyncAnswer{}, errs.New(errs.KindUnavailable, "risk is down")
	}
	return s.fakeRisk.Sync(ctx, b)
}

// A round that passes over a shard whose re-sync is still pending (backing off against a risk that
// restarted) must not be lost: when risk restarts again meanwhile, the pending capture lands on the
// newer incarnation without the orders checked since, and only another round restores them.
func TestTwoRiskRestartsDuringAReSyncKeepEveryReservation(t *testing.T) {
	risk := &syncBlocker{fakeRisk: newFakeRisk()}
	x := syncedWithAlice(t, risk, fastProbe)
	risk.block.Store(true)
	risk.restart() // incarnation 2: the heartbeat starts a round, its sync fails and backs off
	eventually(t, "the sync backing off", func() bool { return risk.fails.Load() >= 4 })
	submit(t, x, limit("bob", "b1", book.Buy, 9100, 2)) // reserved by incarnation 2, journaled after the capture
	risk.restart()                                      // incarnation 3
	time.Sleep(100 * time.Millisecond)                  // the heartbeat notices 3 and runs a round
	risk.block.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if synced(x) && sameReservations(risk.openQty(), openOrders(t, x)) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("after the re-sync: risk holds %v, open orders need %v", risk.openQty(), openOrders(t, x))
}
