package matching_test

import (
	"fmt"
	"sort"
	"strings"

	"github.com/shopspring/decimal"

	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
)

// chaosViolations collects the invariant violations of one check, each a readable line naming the
// invariant, the account, asset or order, and expected against got.
type chaosViolations struct{ lines []string }

func (v *chaosViolations) add(format string, args ...any) {
	v.lines = append(v.lines, fmt.Sprintf(format, args...))
}

// num parses a decimal a service reported; a malformed one is itself a violation.
func (v *chaosViolations) num(what, s string) decimal.Decimal {
	if s == "" {
		return decimal.Zero
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		v.add("%s: %q is not a decimal", what, s)
	}
	return d
}

// checkInvariants evaluates I1–I3 on a state read with the load stopped.
func checkInvariants(st *chaosState, orders []chaosOrder, credits, debits map[string]decimal.Decimal) []string {
	v := &chaosViolations{}
	checkConservation(v, st, credits, debits)
	checkReservations(v, st, orders)
	checkOrdersAndPositions(v, st, orders)
	checkAdminViews(v, st, credits, debits)
	sort.Strings(v.lines)
	return v.lines
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// I1: per asset, Σ (free + reserved) over every account, the fee account included, equals Σ credits
// − Σ debits; and each balance's total is its free plus reserved part.
func checkConservation(v *chaosViolations, st *chaosState, credits, debits map[string]decimal.Decimal) {
	sums := map[string]decimal.Decimal{}
	perAccount := map[string][]string{}
	for _, acct := range sortedKeys(st.accounts) {
		for _, b := range st.accounts[acct].GetBalances() {
			what := fmt.Sprintf("I1 account %s asset %s", acct, b.GetAssetId())
			total, free, reserved := v.num(what+" total", b.GetTotal()), v.num(what+" available", b.GetAvailable()), v.num(what+" reserved", b.GetReserved())
			if !free.Add(reserved).Equal(total) {
				v.add("%s: total %s != available %s + reserved %s", what, total, free, reserved)
			}
			sums[b.GetAssetId()] = sums[b.GetAssetId()].Add(free).Add(reserved)
			perAccount[b.GetAssetId()] = append(perAccount[b.GetAssetId()], acct+" "+total.String())
		}
	}
	for _, asset := range chaosAssets {
		want := credits[asset].Sub(debits[asset])
		if got := sums[asset]; !got.Equal(want) {
			v.add("I1 asset %s: Σ(free+reserved) over all accounts = %s, want Σ credits − Σ debits = %s − %s = %s (off by %s); balances: %s",
				asset, got, credits[asset], debits[asset], want, got.Sub(want).StringFixed(assetScale), strings.Join(perAccount[asset], ", "))
		}
	}
}

// chaosHeld is one side of the I2 pairing: an open order's need or a reservation's holding.
type chaosHeld struct {
	id         string // "order 12 (cid r1-w3-40)" or "reservation 77"
	price, qty decimal.Decimal
	asset      string
	amount     decimal.Decimal
	paired     bool
}

// I2: every resting order holds a reservation of exactly what it needs (same side, price and
// remaining quantity; the amount risk documents), no reservation exists without a resting order,
// and each balance's reserved part is the sum of its reservations.
func checkReservations(v *chaosViolations, st *chaosState, orders []chaosOrder) {
	history := map[string][]string{}
	for _, o := range orders {
		history[orderKey(o.account, o.symbol, o.cid)] = o.history
	}
	type symbolOrder struct {
		symbol string
		id     uint64
	}
	cids := map[symbolOrder]string{} // order ids are per book
	for _, o := range st.orders {
		cids[symbolOrder{o.GetSymbol(), o.GetOrderId()}] = o.GetClientOrderId()
	}
	type group struct{ orders, reservations []*chaosHeld }
	groups := map[string]*group{}
	get := func(acct, symbol string, side matchingv1.Side) *group {
		k := fmt.Sprintf("%s %s %s", acct, symbol, strings.TrimPrefix(side.String(), "SIDE_"))
		if groups[k] == nil {
			groups[k] = &group{}
		}
		return groups[k]
	}
	for _, sym := range chaosSymbols {
		book := st.books[sym.name]
		for _, side := range []matchingv1.Side{matchingv1.Side_SIDE_BUY, matchingv1.Side_SIDE_SELL} {
			list := book.GetBidOrders()
			if side == matchingv1.Side_SIDE_SELL {
				list = book.GetAskOrders()
			}
			for _, o := range list {
				what := fmt.Sprintf("I2 %s order %d", sym.name, o.GetOrderId())
				price, rem := v.num(what+" price", o.GetPrice()), v.num(what+" remaining", o.GetRemainingQuantity())
				asset, need := sym.reservationNeeded(side, price, rem)
				g := get(o.GetAccountId(), sym.name, side)
				cid := cids[symbolOrder{sym.name, o.GetOrderId()}]
				id := fmt.Sprintf("order %d (%s/%s", o.GetOrderId(), o.GetAccountId(), cid)
				if h := history[orderKey(o.GetAccountId(), sym.name, cid)]; len(h) > 0 {
					id += "; " + strings.Join(h, ", ")
				}
				g.orders = append(g.orders, &chaosHeld{id: id + ")", price: price, qty: rem, asset: asset, amount: need})
			}
		}
	}
	for _, acct := range sortedKeys(st.accounts) {
		a := st.accounts[acct]
		reserved := map[string]decimal.Decimal{}
		for _, r := range a.GetReservations() {
			what := fmt.Sprintf("I2 account %s reservation %d", acct, r.GetReservationId())
			amount := v.num(what+" amount", r.GetAmount())
			reserved[r.GetAssetId()] = reserved[r.GetAssetId()].Add(amount)
			g := get(acct, r.GetSymbol(), matchingv1.Side(r.GetSide()))
			g.reservations = append(g.reservations, &chaosHeld{id: fmt.Sprintf("reservation %d", r.GetReservationId()),
				price: v.num(what+" price", r.GetPrice()), qty: v.num(what+" quantity", r.GetQuantity()), asset: r.GetAssetId(), amount: amount})
		}
		for _, b := range a.GetBalances() {
			got := v.num("I2 account "+acct+" reserved", b.GetReserved())
			if want := reserved[b.GetAssetId()]; !got.Equal(want) {
				v.add("I2 account %s asset %s: balance reserved %s != Σ of its reservations %s", acct, b.GetAssetId(), got, want)
			}
		}
	}
	for _, k := range sortedKeys(groups) {
		g := groups[k]
		// Exact matches first, then same price and quantity with a wrong amount, then same price with
		// another quantity (a reservation not following the order's fills or amends); the rest has no
		// partner at all.
		for pass := range 3 {
			for _, o := range g.orders {
				for _, r := range g.reservations {
					if o.paired || r.paired || !o.price.Equal(r.price) {
						continue
					}
					sameQty, sameAmount := o.qty.Equal(r.qty), o.asset == r.asset && o.amount.Equal(r.amount)
					switch {
					case pass == 0 && sameQty && sameAmount:
					case pass == 1 && sameQty:
						v.add("I2 %s: %s (price %s, remaining %s) needs %s %s, its %s holds %s %s", k, o.id, o.price, o.qty, o.amount, o.asset, r.id, r.amount, r.asset)
					case pass == 2:
						v.add("I2 %s: %s (price %s, remaining %s) needs %s %s, but the unpaired reservation at its price, %s, is for quantity %s and holds %s %s",
							k, o.id, o.price, o.qty, o.amount, o.asset, r.id, r.qty, r.amount, r.asset)
					default:
						continue
					}
					o.paired, r.paired = true, true
				}
			}
		}
		for _, o := range g.orders {
			if !o.paired {
				v.add("I2 %s: %s (price %s, remaining %s) needs %s %s reserved, but risk holds no reservation with that price and quantity%s",
					k, o.id, o.price, o.qty, o.amount, o.asset, describeUnpaired(g.reservations))
			}
		}
		for _, r := range g.reservations {
			if !r.paired {
				v.add("I2 %s: %s (price %s, quantity %s, %s %s) has no resting order with that price and remaining quantity%s",
					k, r.id, r.price, r.qty, r.amount, r.asset, describeUnpaired(g.orders))
			}
		}
	}
}

func describeUnpaired(others []*chaosHeld) string {
	var parts []string
	for _, h := range others {
		if !h.paired {
			parts = append(parts, fmt.Sprintf("%s price %s qty %s", h.id, h.price, h.qty))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (unpaired on the other side: " + strings.Join(parts, "; ") + ")"
}

// I3: every acknowledged order is still there with at least the fills acknowledged for it, each
// account's position in risk equals its net fills as matching reports them (a trade applied twice,
// or one leg only, shows here), and positions net to zero per symbol.
func checkOrdersAndPositions(v *chaosViolations, st *chaosState, orders []chaosOrder) {
	net := map[string]decimal.Decimal{} // account symbol -> buys − sells
	for _, o := range orders {
		key := orderKey(o.account, o.symbol, o.cid)
		got, ok := st.orders[key]
		if !ok {
			if o.acked {
				v.add("I3 acknowledged order %s (%s, acknowledged filled %s) is missing after recovery (GetOrder: NotFound)",
					key, strings.TrimPrefix(o.side.String(), "SIDE_"), o.ackedFilled)
			}
			continue
		}
		filled := v.num("I3 order "+key+" filled_quantity", got.GetFilledQuantity())
		if filled.LessThan(o.ackedFilled) {
			v.add("I3 order %s: filled %s after recovery, less than the %s acknowledged before", key, filled, o.ackedFilled)
		}
		if got.GetSide() == matchingv1.Side_SIDE_SELL {
			filled = filled.Neg()
		}
		k := o.account + " " + o.symbol
		net[k] = net[k].Add(filled)
	}
	for _, acct := range sortedKeys(st.accounts) {
		positions := map[string]*riskv1.Position{}
		for _, p := range st.accounts[acct].GetPositions() {
			positions[p.GetSymbol()] = p
		}
		for _, sym := range chaosSymbols {
			got := v.num("I3 position "+acct+" "+sym.name, positions[sym.name].GetQuantity())
			want := net[acct+" "+sym.name]
			if !got.Equal(want) {
				v.add("I3 account %s %s: position in risk %s != net fills in matching %s (off by %s)", acct, sym.name, got, want, got.Sub(want))
			}
		}
	}
	for _, sym := range chaosSymbols {
		sum := decimal.Zero
		for _, a := range st.accounts {
			for _, p := range a.GetPositions() {
				if p.GetSymbol() == sym.name {
					sum = sum.Add(v.num("I3 position "+sym.name, p.GetQuantity()))
				}
			}
		}
		if !sum.IsZero() {
			v.add("I3 %s: Σ positions over all accounts = %s, want 0", sym.name, sum)
		}
	}
}

// checkAdminViews holds the services' own admin reports to the same standard: risk's Audit must
// agree with the sums the test computes from GetAccount and with the transfers the test made, and
// no matching shard may have halted its settlement (a refusal SIGKILL alone must never cause) or
// still be settling once the load has stopped.
func checkAdminViews(v *chaosViolations, st *chaosState, credits, debits map[string]decimal.Decimal) {
	if a := st.audit; a != nil {
		if !a.GetConsistent() {
			v.add("I1 risk Audit reports itself inconsistent: %s", a.GetProblem())
		}
		sums := map[string]decimal.Decimal{}
		for _, acct := range st.accounts {
			for _, b := range acct.GetBalances() {
				sums[b.GetAssetId()] = sums[b.GetAssetId()].Add(v.num("I1 balance", b.GetTotal()))
			}
		}
		for _, x := range a.GetAssets() {
			asset := x.GetAssetId()
			for _, f := range []struct {
				what      string
				got, want decimal.Decimal
			}{
				{"total (Σ of every balance)", v.num("I1 Audit total", x.GetTotal()), sums[asset]},
				{"credits", v.num("I1 Audit credits", x.GetCredits()), credits[asset]},
				{"debits", v.num("I1 Audit debits", x.GetDebits()), debits[asset]},
			} {
				if !f.got.Equal(f.want) {
					v.add("I1 risk Audit asset %s: %s %s, the test's own sum is %s (off by %s)", asset, f.what, f.got, f.want, f.got.Sub(f.want))
				}
			}
			if r, sum := v.num("I2 Audit reserved", x.GetReserved()), v.num("I2 Audit reservations", x.GetReservations()); !r.Equal(sum) {
				v.add("I2 risk Audit asset %s: reserved %s != Σ reservations %s", asset, r, sum)
			}
		}
	}
	if s := st.settlement; s != nil {
		for _, sh := range s.GetShards() {
			switch {
			case sh.GetHalted():
				v.add("I3 matching shard %d halted its settlement (journal %d, settled %d): %s", sh.GetShard(), sh.GetJournalSeq(), sh.GetSettledSeq(), sh.GetHaltReason())
			case sh.GetQueued() > 0 || sh.GetSyncing():
				v.add("I3 matching shard %d still settling: %d items queued, re-sync pending %v (journal %d, settled %d)",
					sh.GetShard(), sh.GetQueued(), sh.GetSyncing(), sh.GetJournalSeq(), sh.GetSettledSeq())
			}
		}
	}
}
