package matching_test

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
	"github.com/bourse-dev/bourse/services/matching/internal/exchange"
)

// settlementEvidence says where a failed check's settlement stands, so that a break names the
// positions it lies at: risk's watermark of each stream (Audit) next to the shard's journal and
// settled positions (GetSettlementStatus), and, from a replay of a copy of matching's journals
// (from their last snapshots) into a recorder, the settlement items matching holds above risk's
// watermark. For each account and symbol whose position differs it tells whether the trades
// above the watermark account for the difference (settlement is behind: halted or queued) or not
// (risk's settled trades disagree with matching's: the break lies at or below the watermark), and
// lists the first trades of those accounts on each side of the watermark.
func settlementEvidence(c *chaosCluster, st *chaosState, orders []chaosOrder) string {
	if st == nil {
		return "settlement evidence: no state was read"
	}
	var b strings.Builder
	b.WriteString("--- settlement evidence\n")
	type streamKey struct {
		shard uint32
		epoch uint64
	}
	riskWM := map[streamKey]uint64{}
	for _, s := range st.audit.GetStreams() {
		if s.GetStream().GetOwner() == "matching" {
			riskWM[streamKey{s.GetStream().GetShard(), s.GetStream().GetEpoch()}] = s.GetWatermark()
		}
	}
	fmt.Fprintf(&b, "risk incarnation %d, %d reservations; streams (shard@epoch: watermark):", st.audit.GetRiskIncarnation(), st.audit.GetReservations())
	keys := make([]streamKey, 0, len(riskWM))
	for k := range riskWM {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].shard < keys[j].shard || (keys[i].shard == keys[j].shard && keys[i].epoch < keys[j].epoch)
	})
	for _, k := range keys {
		fmt.Fprintf(&b, " %d@%x: %d", k.shard, k.epoch, riskWM[k])
	}
	b.WriteString("\n")
	watermark := map[uint32]uint64{}
	for _, sh := range st.settlement.GetShards() {
		wm, ok := riskWM[streamKey{sh.GetShard(), sh.GetEpoch()}]
		watermark[sh.GetShard()] = wm
		note := ""
		switch {
		case !ok:
			note = " — risk has no such stream"
		case wm > sh.GetJournalSeq():
			note = " — RISK IS AHEAD OF THE JOURNAL"
		}
		fmt.Fprintf(&b, "matching shard %d@%x: journal %d, settled %d, queued %d, syncing %v, halted %v, risk incarnation synced %d; risk's watermark %d%s\n",
			sh.GetShard(), sh.GetEpoch(), sh.GetJournalSeq(), sh.GetSettledSeq(), sh.GetQueued(), sh.GetSyncing(), sh.GetHalted(),
			sh.GetRiskIncarnation(), wm, note)
	}

	items, from, err := replaySettlement(c)
	if err != nil {
		fmt.Fprintf(&b, "replay of matching's journals: %v\n", err)
		return strings.TrimRight(b.String(), "\n")
	}
	for shard, f := range from {
		fmt.Fprintf(&b, "replay of shard %d from its snapshot: %d settlement items, journal positions %d to %d\n",
			shard, len(items[shard]), f.first, f.last)
	}

	// Net quantity per account and symbol of the trades above risk's watermark (not applied yet).
	above := map[string]decimal.Decimal{}
	for shard, list := range items {
		for _, it := range list {
			if it.Seq > watermark[shard] && it.Release == 0 && it.ShrinkID == 0 {
				q := lotsToQty(it.Trade.Spec, it.Trade.Qty)
				above[it.Trade.Buyer.Account+" "+it.Trade.Spec.Symbol] = above[it.Trade.Buyer.Account+" "+it.Trade.Spec.Symbol].Add(q)
				above[it.Trade.Seller.Account+" "+it.Trade.Spec.Symbol] = above[it.Trade.Seller.Account+" "+it.Trade.Spec.Symbol].Sub(q)
			}
		}
	}
	net := netFills(st, orders)
	suspects := map[string]bool{}
	for _, acct := range sortedKeys(st.accounts) {
		pos := map[string]decimal.Decimal{}
		for _, p := range st.accounts[acct].GetPositions() {
			d, _ := decimal.NewFromString(p.GetQuantity())
			pos[p.GetSymbol()] = d
		}
		for _, sym := range chaosSymbols {
			k := acct + " " + sym.name
			if pos[sym.name].Equal(net[k]) {
				continue
			}
			residual := pos[sym.name].Add(above[k]).Sub(net[k])
			verdict := "explained by the trades above risk's watermark (settlement is behind)"
			if !residual.IsZero() {
				verdict = fmt.Sprintf("NOT explained: off by %s among trades risk counts as settled", residual)
				suspects[k] = true
			}
			fmt.Fprintf(&b, "%s: risk position %s, matching net fills %s, above the watermark %s: %s\n", k, pos[sym.name], net[k], above[k], verdict)
		}
	}
	for shard, list := range items {
		wm := watermark[shard]
		var first, last []string
		for _, it := range list {
			if it.Release != 0 || it.ShrinkID != 0 {
				continue
			}
			line := fmt.Sprintf("  seq %d %s %s@%d buyer %s (res %d) seller %s (res %d)", it.Seq, it.Trade.Spec.Symbol,
				lotsToQty(it.Trade.Spec, it.Trade.Qty), it.Trade.Price, it.Trade.Buyer.Account, it.Trade.Buyer.ReservationID,
				it.Trade.Seller.Account, it.Trade.Seller.ReservationID)
			switch {
			case it.Seq > wm && len(first) < 10:
				first = append(first, line)
			case it.Seq <= wm && (suspects[it.Trade.Buyer.Account+" "+it.Trade.Spec.Symbol] || suspects[it.Trade.Seller.Account+" "+it.Trade.Spec.Symbol]):
				last = append(last, line)
				if len(last) > 10 {
					last = last[1:]
				}
			}
		}
		if len(last) > 0 {
			fmt.Fprintf(&b, "shard %d: the last trades at or below risk's watermark %d of the positions not explained:\n%s\n", shard, wm, strings.Join(last, "\n"))
		}
		if len(first) > 0 {
			fmt.Fprintf(&b, "shard %d: the first trades above risk's watermark %d:\n%s\n", shard, wm, strings.Join(first, "\n"))
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// netFills is each account's buys − sells per symbol as matching reports its orders.
func netFills(st *chaosState, orders []chaosOrder) map[string]decimal.Decimal {
	net := map[string]decimal.Decimal{}
	for _, o := range orders {
		got, ok := st.orders[orderKey(o.account, o.symbol, o.cid)]
		if !ok {
			continue
		}
		filled, _ := decimal.NewFromString(got.GetFilledQuantity())
		if got.GetSide() == matchingv1.Side_SIDE_SELL {
			filled = filled.Neg()
		}
		net[o.account+" "+o.symbol] = net[o.account+" "+o.symbol].Add(filled)
	}
	return net
}

func lotsToQty(s *exchange.Spec, lots int64) decimal.Decimal {
	return decimal.New(lots*s.LotUnits, -int32(s.QtyScale))
}

type replayRange struct{ first, last uint64 }

// replaySettlement opens a copy of matching's data directory with a recorder for risk and returns
// the settlement items each shard's recovery produces (everything after its snapshot), by shard.
func replaySettlement(c *chaosCluster) (map[uint32][]exchange.SettleItem, map[uint32]replayRange, error) {
	dir, err := os.MkdirTemp("", "chaos-replay-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	if err := copyTree(filepath.Join(c.dir, "matching-data"), dir); err != nil {
		return nil, nil, fmt.Errorf("copy: %w", err)
	}
	rec := &settleRecorder{items: map[uint32][]exchange.SettleItem{}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	x, err := exchange.Open(ctx, exchange.Config{DataDir: dir, Shards: 2, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		ProbeEvery: time.Hour, RiskTimeout: 5 * time.Second}, rec)
	if err != nil {
		return nil, nil, fmt.Errorf("open: %w", err)
	}
	for done := false; !done && ctx.Err() == nil; {
		done = true
		for _, sh := range x.SettlementStatus() {
			if sh.SettledSeq < sh.JournalSeq || sh.Queued > 0 || sh.Syncing {
				done = false
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = x.Close(ctx)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	ranges := map[uint32]replayRange{}
	for shard, list := range rec.items {
		if len(list) > 0 {
			ranges[shard] = replayRange{list[0].Seq, list[len(list)-1].Seq}
		}
	}
	return rec.items, ranges, ctx.Err()
}

// settleRecorder is a risk that accepts and records every settlement part and everything else;
// it answers as a risk that has settled nothing, so recovery sends every item it has.
type settleRecorder struct {
	mu    sync.Mutex
	items map[uint32][]exchange.SettleItem
}

func (r *settleRecorder) Symbol(context.Context, string) (exchange.RiskSymbol, error) {
	return exchange.RiskSymbol{}, fmt.Errorf("recorder: no symbols")
}

func (r *settleRecorder) Check(_ context.Context, b exchange.CheckBatch) (exchange.CheckAnswer, error) {
	return exchange.CheckAnswer{Decisions: make([]exchange.RiskDecision, len(b.Checks)), Incarnation: 1}, nil
}

func (r *settleRecorder) Settle(_ context.Context, b exchange.SettleBatch) (exchange.SettleAnswer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.items[b.Stream.Shard] = append(r.items[b.Stream.Shard], b.Items...)
	return exchange.SettleAnswer{Watermark: b.Through, Incarnation: 1}, nil
}

func (r *settleRecorder) Sync(context.Context, exchange.SyncBatch) (exchange.SyncAnswer, error) {
	return exchange.SyncAnswer{Incarnation: 1}, nil
}

func (r *settleRecorder) Release(context.Context, []uint64) error { return nil }

// copyTree copies the regular files under src into dst.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		in, err := os.Open(path)
		if err != nil {
			if os.IsNotExist(err) { // a segment or snapshot replaced while copying
				return nil
			}
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}
