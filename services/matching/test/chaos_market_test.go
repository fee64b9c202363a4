package matching_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/shopspring/decimal"

	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
)

// feeAccount is risk's default --fee-account; I1 sums it with the trading accounts.
const feeAccount = "fees"

// chaosSymbol is one book of the chaos market: risk's definition, matching's trading rules and the
// price the random load trades around.
type chaosSymbol struct {
	name, base, quote    string
	priceScale, qtyScale uint32
	fee                  decimal.Decimal // taker fee rate
	tick, lot, mid       decimal.Decimal
}

var (
	chaosAssets  = []string{"USD", "BTC", "ETH", "SOL"}
	chaosSymbols = []chaosSymbol{
		{name: "BTC-USD", base: "BTC", quote: "USD", priceScale: 2, qtyScale: 4, fee: dec("0.001"), tick: dec("0.5"), lot: dec("0.001"), mid: dec("50000")},
		{name: "ETH-USD", base: "ETH", quote: "USD", priceScale: 2, qtyScale: 3, fee: dec("0.002"), tick: dec("0.01"), lot: dec("0.01"), mid: dec("3000")},
		{name: "SOL-USD", base: "SOL", quote: "USD", priceScale: 3, qtyScale: 2, fee: dec("0.0005"), tick: dec("0.005"), lot: dec("0.1"), mid: dec("150")},
	}
	// chaosFunding is what each account is credited with at the start: enough for a long run of
	// orders of up to 20 lots, little enough that debits and open orders compete for it.
	chaosFunding = map[string]decimal.Decimal{"USD": dec("200000"), "BTC": dec("2"), "ETH": dec("30"), "SOL": dec("600")}
	assetScale   = int32(8)
)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func chaosAccounts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("acct-%d", i)
	}
	return out
}

func symbolByName(name string) chaosSymbol {
	for _, s := range chaosSymbols {
		if s.name == name {
			return s
		}
	}
	panic("unknown chaos symbol " + name) // test data only: every name comes from chaosSymbols
}

// reservationNeeded is what risk documents an open order must hold: a buy locks price × remaining
// plus the taker fee on it rounded up, in quote; a sell locks its remaining base quantity.
func (s chaosSymbol) reservationNeeded(side matchingv1.Side, price, remaining decimal.Decimal) (asset string, amount decimal.Decimal) {
	if side == matchingv1.Side_SIDE_SELL {
		return s.base, remaining
	}
	notional := price.Mul(remaining)
	return s.quote, notional.Add(notional.Mul(s.fee).RoundCeil(assetScale))
}

// setupChaosMarket defines the assets, symbols and accounts in risk, funds every account (recorded in
// the ledger as credits) and opens the books in matching.
func setupChaosMarket(t *testing.T, c *chaosCluster, accounts []string, l *chaosLedger) {
	t.Helper()
	ctx := context.Background()
	cl := c.current()
	for _, a := range chaosAssets {
		must(t)(cl.risk.DefineAsset(ctx, &riskv1.DefineAssetRequest{Asset: &riskv1.Asset{AssetId: a, Scale: uint32(assetScale)}}))
	}
	for _, s := range chaosSymbols {
		must(t)(cl.risk.DefineSymbol(ctx, &riskv1.DefineSymbolRequest{Symbol: &riskv1.Symbol{Symbol: s.name, BaseAsset: s.base,
			QuoteAsset: s.quote, PriceScale: s.priceScale, QtyScale: s.qtyScale, TakerFeeRate: s.fee.String()}}))
	}
	for _, acct := range accounts {
		must(t)(cl.risk.OpenAccount(ctx, &riskv1.OpenAccountRequest{AccountId: acct}))
		for _, a := range chaosAssets {
			amount := chaosFunding[a]
			must(t)(cl.risk.Credit(ctx, &riskv1.CreditRequest{AccountId: acct, AssetId: a, Amount: amount.String(), Ref: "fund-" + acct + "-" + a}))
			l.transferred(a, amount, true)
		}
	}
	for _, s := range chaosSymbols {
		must(t)(cl.matching.AddSymbol(ctx, &matchingv1.AddSymbolRequest{Symbol: &matchingv1.Symbol{Symbol: s.name,
			TickSize: s.tick.String(), LotSize: s.lot.String(), MinQuantity: s.lot.String(), MaxQuantity: "100"}}))
	}
}
