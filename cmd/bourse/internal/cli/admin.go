package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/shopspring/decimal"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
)

// assetScale is the scale assets get when `symbols add` defines them: fine enough for any tick,
// lot or fee the CLI accepts.
const assetScale = 8

func newSymbolAddCmd(g *globals) *cobra.Command {
	var tick, lot, minQty, maxQty, fee, reference string
	cmd := &cobra.Command{
		Use:   "add BASE-QUOTE",
		Short: "Open a market (admin): its assets and symbol in risk, then its book in matching",
		Example: `  bourse symbols add BTC-USD --tick 0.5 --lot 0.001 --reference-price 50000
  bourse symbols add ETH-USD --tick 0.05 --lot 0.01 --max-qty 1000 --fee 0.0005`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			symbol := args[0]
			base, quote, ok := strings.Cut(symbol, "-")
			if !ok || base == "" || quote == "" || strings.Contains(quote, "-") {
				return usageError("SYMBOL %q: want BASE-QUOTE, e.g. BTC-USD", symbol)
			}
			scale := func(flag, v string) (uint32, error) {
				d, err := decimal.NewFromString(v)
				if err != nil || !d.IsPositive() {
					return 0, usageError("%s %q: want a positive decimal", flag, v)
				}
				return uint32(max(0, -d.Exponent())), nil
			}
			priceScale, err := scale("--tick", tick)
			if err != nil {
				return err
			}
			qtyScale, err := scale("--lot", lot)
			if err != nil {
				return err
			}
			for flag, v := range map[string]string{"--fee": fee, "--reference-price": reference, "--min-qty": minQty, "--max-qty": maxQty} {
				if err := checkDecimal(flag, v); err != nil {
					return err
				}
			}
			if minQty == "" {
				minQty = lot
			}
			ctx, cancel := g.callCtx(cmd)
			defer cancel()
			_, err = call(g, "risk", func(cc *grpc.ClientConn) (any, error) {
				rc := riskv1.NewRiskServiceClient(cc)
				for _, a := range []string{base, quote} {
					if _, err := rc.DefineAsset(ctx, &riskv1.DefineAssetRequest{Asset: &riskv1.Asset{AssetId: a, Scale: assetScale}}); err != nil {
						return nil, err
					}
				}
				return rc.DefineSymbol(ctx, &riskv1.DefineSymbolRequest{Symbol: &riskv1.Symbol{Symbol: symbol, BaseAsset: base, QuoteAsset: quote,
					PriceScale: priceScale, QtyScale: qtyScale, TakerFeeRate: fee, ReferencePrice: reference}})
			})
			if err != nil {
				return err
			}
			resp, err := call(g, "matching", func(cc *grpc.ClientConn) (*matchingv1.AddSymbolResponse, error) {
				return matchingv1.NewMatchingServiceClient(cc).AddSymbol(ctx, &matchingv1.AddSymbolRequest{Symbol: &matchingv1.Symbol{
					Symbol: symbol, TickSize: tick, LotSize: lot, MinQuantity: minQty, MaxQuantity: maxQty}})
			})
			if err != nil {
				return err
			}
			return g.print(resp, func(t *tabwriter.Writer) {
				row(t, "SYMBOL", "BASE", "QUOTE", "TICK", "LOT", "FEE")
				row(t, symbol, base, quote, tick, lot, fee)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&tick, "tick", "0.01", "price increment")
	f.StringVar(&lot, "lot", "0.001", "quantity increment")
	f.StringVar(&minQty, "min-qty", "", "smallest order (default one lot)")
	f.StringVar(&maxQty, "max-qty", "100", "largest order")
	f.StringVar(&fee, "fee", "0.001", "taker fee rate")
	f.StringVar(&reference, "reference-price", "", "price the price band starts from before the first trade")
	return cmd
}

func newAccountsCmd(g *globals) *cobra.Command {
	cmd := group(&cobra.Command{Use: "accounts", Short: "Trading accounts in risk (admin)"})
	open := &cobra.Command{
		Use:     "open ACCOUNT...",
		Short:   "Open trading accounts (an account that exists already is left as it is)",
		Example: "  bourse accounts open alice bob",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := g.callCtx(cmd)
			defer cancel()
			for _, id := range args {
				_, err := call(g, "risk", func(cc *grpc.ClientConn) (*riskv1.OpenAccountResponse, error) {
					resp, err := riskv1.NewRiskServiceClient(cc).OpenAccount(ctx, &riskv1.OpenAccountRequest{AccountId: id})
					if status.Code(err) == codes.AlreadyExists {
						return resp, nil
					}
					return resp, err
				})
				if err != nil {
					return err
				}
				fmt.Fprintf(g.out, "opened %s\n", id)
			}
			return nil
		},
	}
	var ref string
	credit := &cobra.Command{
		Use:   "credit ACCOUNT ASSET AMOUNT --ref REF",
		Short: "Credit an asset to an account in risk (admin; money in fiat currencies comes in through bourse deposit)",
		Example: `  bourse accounts credit mm BTC 25 --ref genesis-mm-btc
  bourse accounts credit mm BTC 25 --ref genesis-mm-btc    # again: a duplicate, nothing changes`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ref == "" {
				return usageError("--ref is required: it makes the credit happen once however often it is sent")
			}
			if err := checkDecimal("AMOUNT", args[2]); err != nil {
				return err
			}
			ctx, cancel := g.callCtx(cmd)
			defer cancel()
			resp, err := call(g, "risk", func(cc *grpc.ClientConn) (*riskv1.CreditResponse, error) {
				return riskv1.NewRiskServiceClient(cc).Credit(ctx, &riskv1.CreditRequest{AccountId: args[0], AssetId: args[1], Amount: args[2], Ref: ref})
			})
			if err != nil {
				return err
			}
			return g.print(resp, func(t *tabwriter.Writer) {
				row(t, "ACCOUNT", "ASSET", "AMOUNT", "REF", "DUPLICATE")
				row(t, args[0], args[1], args[2], ref, resp.GetDuplicate())
			})
		},
	}
	credit.Flags().StringVar(&ref, "ref", "", "unique reference of this credit (idempotency)")
	cmd.AddCommand(open, credit)
	return cmd
}
