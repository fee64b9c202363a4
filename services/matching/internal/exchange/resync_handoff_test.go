package exchange

import (
	"context"
	"log/slog"
	"testing"
	"time"
)

// slowResyncLog is a log sink that is slow (a blocked terminal, a full pipe) on the one message a
// re-sync request logs, which widens whatever a request does after logging to a window a poller
// sees.
type slowResyncLog struct{ slog.Handler }

func (h slowResyncLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "re-sync of reservations with risk requested" {
		time.Sleep(30 * time.Millisecond)
	}
	return h.Handler.Handle(ctx, r)
}

func (slowResyncLog) Enabled(context.Context, slog.Level) bool { return true }

func (h slowResyncLog) WithAttrs(as []slog.Attr) slog.Handler {
	return slowResyncLog{h.Handler.WithAttrs(as)}
}
func (h slowResyncLog) WithGroup(g string) slog.Handler { return slowResyncLog{h.Handler.WithGroup(g)} }

// A round that passes over a shard whose capture is still pending leaves the shard owing another
// round; when the capture ends, the shard must go on saying it is syncing until that round has
// queued its capture. Reading "settled, not syncing" in between, then "syncing" again, is exactly
// what a caller waiting for settlement must never see: it would take the reservations the first
// capture missed for restored.
func TestStatusSaysSyncingFromAPassedOverCaptureToTheNextRound(t *testing.T) {
	risk := &syncBlocker{fakeRisk: newFakeRisk()}
	x := syncedWithAlice(t, risk, func(c *Config) { c.Logger = slog.New(slowResyncLog{slog.DiscardHandler}) })

	risk.block.Store(true)
	x.requestResync("test: the first round") // its captures fail against risk and back off
	eventually(t, "the captures backing off", func() bool { return risk.fails.Load() >= 2 })
	x.requestResync("test: a round that passes over the pending captures")
	eventually(t, "the second round passing over both shards", func() bool {
		for _, sh := range x.shards {
			if !sh.syncMissed.Load() {
				return false
			}
		}
		return true
	})

	watch := watchSettled(t, x, 200*time.Microsecond)
	risk.block.Store(false)
	eventually(t, "the re-sync", func() bool {
		return synced(x) && sameReservations(risk.openQty(), openOrders(t, x)) && !x.resync.owed()
	})
	time.Sleep(300 * time.Millisecond) // any round still to come shows itself
	if watch.syncingAgain() {
		t.Fatal("the status said settled, not syncing, while a round was owed, then syncing again")
	}
}
