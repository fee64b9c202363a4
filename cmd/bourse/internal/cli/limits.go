package cli

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
)

// limitFields are the settable limits, as `bourse limits --set` names them.
var limitFields = map[string]func(l *riskv1.Limits, v string) error{
	"max_position":   func(l *riskv1.Limits, v string) error { l.MaxPosition = v; return checkDecimal("max_position", v) },
	"max_daily_loss": func(l *riskv1.Limits, v string) error { l.MaxDailyLoss = v; return checkDecimal("max_daily_loss", v) },
	"max_drawdown":   func(l *riskv1.Limits, v string) error { l.MaxDrawdown = v; return checkDecimal("max_drawdown", v) },
	"max_order_notional": func(l *riskv1.Limits, v string) error {
		l.MaxOrderNotional = v
		return checkDecimal("max_order_notional", v)
	},
	"price_band":            func(l *riskv1.Limits, v string) error { l.PriceBand = v; return checkDecimal("price_band", v) },
	"order_rate_per_second": func(l *riskv1.Limits, v string) (err error) { l.OrderRatePerSecond, err = parseCount(v); return err },
	"order_rate_burst":      func(l *riskv1.Limits, v string) (err error) { l.OrderRateBurst, err = parseCount(v); return err },
}

func parseCount(v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a non-negative integer", v)
	}
	return n, nil
}

func newLimitsCmd(g *globals) *cobra.Command {
	var symbol string
	var set []string
	var clear bool
	cmd := &cobra.Command{
		Use:   "limits [ACCOUNT] [--symbol S] [--set name=value ...]",
		Short: "Show an account's risk limits, or set them (admin)",
		Example: `  bourse limits alice
  bourse limits alice --set max_order_notional=60000 --set order_rate_per_second=100
  bourse limits alice --symbol BTC-USD --set max_position=2 --set price_band=0.1
  bourse limits alice --symbol BTC-USD --clear`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			account := os.Getenv("BOURSE_ACCOUNT")
			if len(args) == 1 {
				account = args[0]
			}
			if account == "" {
				return usageError("name the ACCOUNT (or set BOURSE_ACCOUNT)")
			}
			ctx, cancel := g.callCtx(cmd)
			defer cancel()
			if len(set) > 0 || clear {
				req := &riskv1.SetLimitsRequest{AccountId: account, Symbol: symbol, Limits: &riskv1.Limits{}, Clear: clear}
				for _, kv := range set {
					name, value, ok := strings.Cut(kv, "=")
					apply := limitFields[name]
					if !ok || apply == nil {
						return usageError("--set %q: want name=value, name one of %s", kv, limitNames())
					}
					if err := apply(req.Limits, value); err != nil {
						return usageError("--set %s: %v", name, err)
					}
				}
				if _, err := call(g, "risk", func(cc *grpc.ClientConn) (*riskv1.SetLimitsResponse, error) {
					return riskv1.NewRiskServiceClient(cc).SetLimits(ctx, req)
				}); err != nil {
					return err
				}
			}
			resp, err := call(g, "risk", func(cc *grpc.ClientConn) (*riskv1.GetAccountResponse, error) {
				return riskv1.NewRiskServiceClient(cc).GetAccount(ctx, &riskv1.GetAccountRequest{AccountId: account})
			})
			if err != nil {
				return err
			}
			a := resp.GetAccount()
			return g.print(resp, func(t *tabwriter.Writer) {
				row(t, "SCOPE", "MAX POSITION", "DAILY LOSS", "DRAWDOWN", "ORDER NOTIONAL", "PRICE BAND", "RATE/S", "BURST")
				limitsRow(t, account, a.GetLimits())
				for _, p := range a.GetPositions() {
					if p.GetLimitsOverride() && (symbol == "" || symbol == p.GetSymbol()) {
						limitsRow(t, p.GetSymbol(), p.GetLimits())
					}
				}
			})
		},
	}
	cmd.Flags().StringVar(&symbol, "symbol", "", "a symbol's override instead of the account's defaults")
	cmd.Flags().StringArrayVar(&set, "set", nil, "set a limit: name=value ("+limitNames()+")")
	cmd.Flags().BoolVar(&clear, "clear", false, "remove the override (with --symbol) or the account's limits")
	return cmd
}

func limitNames() string {
	return "max_position, max_daily_loss, max_drawdown, max_order_notional, price_band, order_rate_per_second, order_rate_burst"
}

func limitsRow(t *tabwriter.Writer, scope string, l *riskv1.Limits) {
	count := func(n int64) string {
		if n == 0 {
			return ""
		}
		return fmt.Sprint(n)
	}
	row(t, scope, l.GetMaxPosition(), l.GetMaxDailyLoss(), l.GetMaxDrawdown(), l.GetMaxOrderNotional(), l.GetPriceBand(),
		count(l.GetOrderRatePerSecond()), count(l.GetOrderRateBurst()))
}

func newTradingStateCmd(g *globals, verb string) *cobra.Command {
	state := map[string]riskv1.TradingState{"halt": riskv1.TradingState_TRADING_STATE_HALTED, "resume": riskv1.TradingState_TRADING_STATE_ACTIVE}[verb]
	var all, reduceOnly bool
	short := map[string]string{"halt": "Kill switch: stop an account (or --all) from trading (admin)",
		"resume": "Lift the kill switch of an account (or --all) (admin)"}[verb]
	cmd := &cobra.Command{
		Use:     verb + " [ACCOUNT | --all]",
		Short:   short,
		Example: fmt.Sprintf("  bourse %s alice\n  bourse %s --all", verb, verb),
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			account := ""
			switch {
			case all && len(args) == 0:
			case !all && len(args) == 1:
				account = args[0]
			default:
				return usageError("name one ACCOUNT or give --all")
			}
			s := state
			if reduceOnly {
				s = riskv1.TradingState_TRADING_STATE_REDUCE_ONLY
			}
			ctx, cancel := g.callCtx(cmd)
			defer cancel()
			resp, err := call(g, "risk", func(cc *grpc.ClientConn) (*riskv1.SetTradingStateResponse, error) {
				return riskv1.NewRiskServiceClient(cc).SetTradingState(ctx, &riskv1.SetTradingStateRequest{AccountId: account, State: s})
			})
			if err != nil {
				return err
			}
			who := account
			if who == "" {
				who = "everyone"
			}
			return g.print(resp, func(t *tabwriter.Writer) { row(t, who, enumName(s, "TRADING_STATE_")) })
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "every account (the global switch)")
	if verb == "halt" {
		cmd.Flags().BoolVar(&reduceOnly, "reduce-only", false, "allow only orders that reduce a position")
	}
	return cmd
}
