package exchange

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/services/matching/internal/book"
)

// syncedWithAlice opens an exchange on risk (closed when the test ends) with BTC-USD and alice's
// resting buy of 3 at 9000, and waits for its first sync with risk.
func syncedWithAlice(t *testing.T, risk Risk, mutate ...func(*Config)) *Exchange {
	t.Helper()
	return syncedWith(t, risk, []OrderRequest{limit("alice", "a1", book.Buy, 9000, 3)}, mutate...)
}

// syncedWith opens an exchange on risk (closed when the test ends) with BTC-USD, submits orders
// and waits for its first sync with risk.
func syncedWith(t *testing.T, risk Risk, orders []OrderRequest, mutate ...func(*Config)) *Exchange {
	t.Helper()
	x := openTest(t, t.TempDir(), risk, mutate...)
	t.Cleanup(func() { closeTest(t, x) })
	addSymbol(t, x, "BTC-USD")
	for _, o := range orders {
		submit(t, x, o)
	}
	eventually(t, "the first sync", func() bool { return synced(x) })
	return x
}

// settledWatch polls an exchange's settlement status from its own goroutine, which runs from
// watchSettled until syncingAgain (or the end of the test) stops it, noting whether the status
// ever read settled and then syncing again.
type settledWatch struct {
	sawSettled, sawSyncingAfter atomic.Bool
	stop, polled                chan struct{}
	once                        sync.Once
}

// watchSettled starts polling x's status every interval.
func watchSettled(t *testing.T, x *Exchange, every time.Duration) *settledWatch {
	w := &settledWatch{stop: make(chan struct{}), polled: make(chan struct{})}
	go func() {
		defer close(w.polled)
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			if synced(x) {
				w.sawSettled.Store(true)
			} else if w.sawSettled.Load() {
				w.sawSyncingAfter.Store(true)
			}
			time.Sleep(every)
		}
	}()
	t.Cleanup(func() { w.syncingAgain() })
	return w
}

// syncingAgain stops the polling and answers whether the status went from settled back to syncing.
func (w *settledWatch) syncingAgain() bool {
	w.once.Do(func() { close(w.stop) })
	<-w.polled
	return w.sawSyncingAfter.Load()
}
