package exchange

import (
	"strconv"
	"strings"
	"testing"

	"github.com/bourse-dev/bourse/services/matching/internal/book"
)

// A re-sync risk refuses because its watermark of the stream is not the capture's — risk holds
// positions the journal never sent it (ahead), or lost some it acknowledged (behind) — must halt
// the shard naming both positions. Re-syncing as of risk's watermark instead would restore the
// captured orders against the wrong set of trades and then skip (ahead) or never resend (behind)
// queued items while reporting everything settled.
func TestReSyncRefusedForAnotherWatermarkHaltsTheShard(t *testing.T) {
	for _, tc := range []struct {
		name  string
		shift func(wm uint64) uint64
	}{
		{"risk ahead of the capture", func(wm uint64) uint64 { return wm + 100 }},
		{"risk behind the capture", func(wm uint64) uint64 { return wm - 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			risk := &syncBlocker{fakeRisk: newFakeRisk()}
			x := openTest(t, t.TempDir(), risk, fastProbe)
			defer closeTest(t, x)
			addSymbol(t, x, "BTC-USD")
			// A trade settled before anything goes wrong, so the watermark is above 0.
			submit(t, x, limit("carol", "c1", book.Sell, 9000, 1))
			submit(t, x, limit("dave", "d1", book.Buy, 9000, 1))
			submit(t, x, limit("alice", "a1", book.Buy, 9000, 3))
			eventually(t, "the first settlement and sync", func() bool { tr, _ := risk.counts(); return synced(x) && tr == 1 })

			// Risk restarts; the round's capture (alice's order resting) cannot reach it yet.
			risk.block.Store(true)
			risk.restart()
			eventually(t, "the re-sync backing off", func() bool { return risk.fails.Load() >= 1 })
			// A trade journaled after the capture: it waits behind the re-sync.
			if r := submit(t, x, limit("bob", "b1", book.Sell, 9000, 3)); r.Err != nil || r.Order.Status != StatusFilled {
				t.Fatalf("crossing sell: %+v", r)
			}
			stream := x.shards[0].rep.stream
			var good, moved uint64
			risk.set(func(f *fakeRisk) {
				good = f.watermarks[stream]
				moved = tc.shift(good)
				f.watermarks[stream] = moved
			})
			risk.block.Store(false)

			eventually(t, "the shard halted or the re-sync through", func() bool {
				st := x.SettlementStatus()[0]
				_, syncs := risk.counts()
				return st.Halted || (synced(x) && syncs >= 2)
			})
			st := x.SettlementStatus()[0]
			if trades, _ := risk.counts(); !st.Halted {
				t.Fatalf("the re-sync was accepted as of risk's watermark %d though the capture is as of %d; "+
					"status %+v, risk applied %d trades", moved, good, st, trades)
			}
			for _, want := range []string{"watermark", itoa(moved), itoa(good)} {
				if !strings.Contains(st.HaltReason, want) {
					t.Errorf("halt reason %q does not name %q", st.HaltReason, want)
				}
			}
			if st.SettledSeq >= st.JournalSeq || st.Queued == 0 {
				t.Errorf("bob's fill is not settled but the status says so: %+v", st)
			}
			if r := submit(t, x, limit("alice", "a2", book.Buy, 9000, 1)); r.Err == nil {
				t.Errorf("a new order on the halted shard was accepted: %+v", r)
			}

			// The operator puts risk back where the journal says it is and resumes.
			risk.set(func(f *fakeRisk) { f.watermarks[stream] = good })
			if _, err := x.ResumeSettlement(0); err != nil {
				t.Fatal(err)
			}
			eventually(t, "settled again", func() bool { return synced(x) })
			if b, _ := risk.filledQty("alice"); b != 3 {
				t.Errorf("alice bought %d, want 3", b)
			}
			if _, s := risk.filledQty("bob"); s != 3 {
				t.Errorf("bob sold %d, want 3", s)
			}
			if got, want := risk.openQty(), openOrders(t, x); !sameReservations(got, want) {
				t.Errorf("risk holds %v, the open orders need %v", got, want)
			}
			if err := risk.conserved(); err != nil {
				t.Error(err)
			}
		})
	}
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

// counts reads the fake's trade and final-sync counters.
func (f *fakeRisk) counts() (trades, syncs int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.trades, f.syncs
}
