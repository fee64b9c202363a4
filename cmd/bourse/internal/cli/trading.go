package cli

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/shopspring/decimal"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
	riskv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/risk/v1"
)

func newSymbolsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "symbols",
		Short:   "The symbols matching trades, with tick and lot sizes",
		Example: "  bourse symbols\n  bourse symbols -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := g.callCtx(cmd)
			defer cancel()
			resp, err := call(g, "matching", func(cc *grpc.ClientConn) (*matchingv1.ListSymbolsResponse, error) {
				return matchingv1.NewMatchingServiceClient(cc).ListSymbols(ctx, &matchingv1.ListSymbolsRequest{})
			})
			if err != nil {
				return err
			}
			return g.print(resp, func(t *tabwriter.Writer) {
				row(t, "SYMBOL", "TICK", "LOT", "MIN QTY", "MAX QTY")
				for _, s := range resp.GetSymbols() {
					row(t, s.GetSymbol(), s.GetTickSize(), s.GetLotSize(), s.GetMinQuantity(), s.GetMaxQuantity())
				}
			})
		},
	}
	cmd.AddCommand(newSymbolAddCmd(g))
	return cmd
}

// orderRef is how a command names an existing order: by id or by client order id.
type orderRef struct {
	account, symbol, clientID string
	orderID                   uint64
}

func addOrderRefFlags(cmd *cobra.Command, r *orderRef) {
	cmd.Flags().StringVar(&r.account, "account", os.Getenv("BOURSE_ACCOUNT"), "trading account (default $BOURSE_ACCOUNT)")
	cmd.Flags().StringVar(&r.clientID, "client-order-id", "", "the order's client order id (instead of ORDER_ID)")
}

func (r *orderRef) parse(args []string) error {
	r.symbol = args[0]
	if len(args) > 1 {
		id, err := strconv.ParseUint(args[1], 10, 64)
		if err != nil || id == 0 {
			return usageError("ORDER_ID %q: want a positive integer", args[1])
		}
		r.orderID = id
	}
	if (r.orderID == 0) == (r.clientID == "") {
		return usageError("name the order by ORDER_ID or --client-order-id (one of them)")
	}
	if r.account == "" {
		return usageError("--account is required (or set BOURSE_ACCOUNT)")
	}
	return nil
}

func newOrderCmd(g *globals) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:   "order",
		Short: "Place, amend, cancel, read and list orders",
	})
	cmd.AddCommand(newPlaceCmd(g, "buy", matchingv1.Side_SIDE_BUY), newPlaceCmd(g, "sell", matchingv1.Side_SIDE_SELL))

	var cancelRef orderRef
	cancelCmd := &cobra.Command{
		Use:     "cancel SYMBOL [ORDER_ID]",
		Short:   "Cancel an order (by id or --client-order-id)",
		Example: "  bourse order cancel BTC-USD 42 --account alice\n  bourse order cancel BTC-USD --client-order-id bid-1 --account alice",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cancelRef.parse(args); err != nil {
				return err
			}
			ctx, cancel := g.callCtx(cmd)
			defer cancel()
			resp, err := call(g, "matching", func(cc *grpc.ClientConn) (*matchingv1.CancelOrderResponse, error) {
				return matchingv1.NewMatchingServiceClient(cc).CancelOrder(ctx, &matchingv1.CancelOrderRequest{
					AccountId: cancelRef.account, Symbol: cancelRef.symbol, OrderId: cancelRef.orderID, ClientOrderId: cancelRef.clientID})
			})
			if err != nil {
				return err
			}
			return g.print(resp, func(t *tabwriter.Writer) { orderTable(t, resp.GetOrder()) })
		},
	}
	addOrderRefFlags(cancelCmd, &cancelRef)

	var getRef orderRef
	getCmd := &cobra.Command{
		Use:     "get SYMBOL [ORDER_ID]",
		Short:   "Show an order",
		Example: "  bourse order get BTC-USD --client-order-id bid-1 --account alice -o json",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := getRef.parse(args); err != nil {
				return err
			}
			ctx, cancel := g.callCtx(cmd)
			defer cancel()
			resp, err := call(g, "matching", func(cc *grpc.ClientConn) (*matchingv1.GetOrderResponse, error) {
				return matchingv1.NewMatchingServiceClient(cc).GetOrder(ctx, &matchingv1.GetOrderRequest{
					AccountId: getRef.account, Symbol: getRef.symbol, OrderId: getRef.orderID, ClientOrderId: getRef.clientID})
			})
			if err != nil {
				return err
			}
			return g.print(resp, func(t *tabwriter.Writer) { orderTable(t, resp.GetOrder()) })
		},
	}
	addOrderRefFlags(getCmd, &getRef)

	var amendRef orderRef
	var amendPrice, amendQty, amendTrigger string
	amendCmd := &cobra.Command{
		Use:     "amend SYMBOL [ORDER_ID] [--price P] [--quantity Q]",
		Short:   "Change an order's price or quantity (a decrease keeps its priority)",
		Example: "  bourse order amend BTC-USD --client-order-id bid-2 --price 49500 --account alice",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := amendRef.parse(args); err != nil {
				return err
			}
			for name, v := range map[string]string{"--price": amendPrice, "--quantity": amendQty, "--trigger-price": amendTrigger} {
				if err := checkDecimal(name, v); err != nil {
					return err
				}
			}
			if amendPrice == "" && amendQty == "" && amendTrigger == "" {
				return usageError("nothing to amend: give --price, --quantity or --trigger-price")
			}
			ctx, cancel := g.callCtx(cmd)
			defer cancel()
			resp, err := call(g, "matching", func(cc *grpc.ClientConn) (*matchingv1.AmendOrderResponse, error) {
				return matchingv1.NewMatchingServiceClient(cc).AmendOrder(ctx, &matchingv1.AmendOrderRequest{
					AccountId: amendRef.account, Symbol: amendRef.symbol, OrderId: amendRef.orderID, ClientOrderId: amendRef.clientID,
					Price: amendPrice, Quantity: amendQty, TriggerPrice: amendTrigger})
			})
			if err != nil {
				return err
			}
			return g.print(resp, func(t *tabwriter.Writer) { orderTable(t, resp.GetOrder()) })
		},
	}
	addOrderRefFlags(amendCmd, &amendRef)
	amendCmd.Flags().StringVar(&amendPrice, "price", "", "new limit price")
	amendCmd.Flags().StringVar(&amendQty, "quantity", "", "new total quantity")
	amendCmd.Flags().StringVar(&amendTrigger, "trigger-price", "", "new stop trigger")

	cmd.AddCommand(cancelCmd, getCmd, amendCmd, newOrderListCmd(g))
	return cmd
}

// checkDecimal refuses what is not a decimal number before it reaches a server.
func checkDecimal(flag, v string) error {
	if v == "" {
		return nil
	}
	if _, err := decimal.NewFromString(v); err != nil {
		return usageError("%s %q is not a decimal number", flag, v)
	}
	return nil
}

func newPlaceCmd(g *globals, verb string, side matchingv1.Side) *cobra.Command {
	var (
		account, price, trigger, clientID, kind, tif string
		postOnly, reduceOnly                         bool
	)
	cmd := &cobra.Command{
		Use:   verb + " SYMBOL QUANTITY [--price P]",
		Short: "Place a " + verb + " order (limit with --price, else market)",
		Example: fmt.Sprintf("  bourse order %s BTC-USD 0.1 --price 50000 --account alice\n"+
			"  bourse order %s BTC-USD 0.1 --account alice              # market, protected\n"+
			"  bourse order %s BTC-USD 0.1 --price 50000 --tif ioc --client-order-id o-7 --account alice", verb, verb, verb),
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if account == "" {
				return usageError("--account is required (or set BOURSE_ACCOUNT)")
			}
			for name, v := range map[string]string{"QUANTITY": args[1], "--price": price, "--trigger-price": trigger} {
				if err := checkDecimal(name, v); err != nil {
					return err
				}
			}
			if clientID == "" {
				// Matching needs one to make a retry safe; the table and JSON show it.
				clientID = newClientOrderID()
			}
			req := &matchingv1.SubmitOrderRequest{AccountId: account, Symbol: args[0], Side: side, Quantity: args[1],
				Price: price, TriggerPrice: trigger, ClientOrderId: clientID, PostOnly: postOnly, ReduceOnly: reduceOnly}
			switch {
			case kind == "" && price != "":
				req.Type = matchingv1.OrderType_ORDER_TYPE_LIMIT
			case kind == "":
				req.Type = matchingv1.OrderType_ORDER_TYPE_MARKET
			default:
				t, ok := matchingv1.OrderType_value["ORDER_TYPE_"+strings.ToUpper(strings.ReplaceAll(kind, "-", "_"))]
				if !ok || t == 0 {
					return usageError("--type %q: want limit, market or stop", kind)
				}
				req.Type = matchingv1.OrderType(t)
			}
			if tif != "" {
				v, ok := matchingv1.TimeInForce_value["TIME_IN_FORCE_"+strings.ToUpper(tif)]
				if !ok || v == 0 {
					return usageError("--tif %q: want gtc, ioc, fok, gtd or day", tif)
				}
				req.TimeInForce = matchingv1.TimeInForce(v)
			}
			ctx, cancel := g.callCtx(cmd)
			defer cancel()
			resp, err := call(g, "matching", func(cc *grpc.ClientConn) (*matchingv1.SubmitOrderResponse, error) {
				return matchingv1.NewMatchingServiceClient(cc).SubmitOrder(ctx, req)
			})
			if err != nil {
				return err
			}
			if err := g.print(resp, func(t *tabwriter.Writer) {
				orderTable(t, resp.GetOrder())
				if len(resp.GetFills()) > 0 {
					fmt.Fprintln(t)
					row(t, "FILL PRICE", "QUANTITY", "ROLE")
					for _, f := range resp.GetFills() {
						role := "taker"
						if f.GetMaker() {
							role = "maker"
						}
						row(t, f.GetPrice(), f.GetQuantity(), role)
					}
				}
			}); err != nil {
				return err
			}
			if o := resp.GetOrder(); o.GetStatus() == matchingv1.OrderStatus_ORDER_STATUS_REJECTED {
				reason := enumName(o.GetRejectReason(), "REJECT_REASON_")
				if o.GetRiskRejectReason() != "" {
					reason += " (" + o.GetRiskRejectReason() + ")"
				}
				return &exitError{ExitFailed, "order rejected: " + reason}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&account, "account", os.Getenv("BOURSE_ACCOUNT"), "trading account (default $BOURSE_ACCOUNT)")
	f.StringVar(&price, "price", "", "limit price (omit for a market order)")
	f.StringVar(&trigger, "trigger-price", "", "stop trigger (with --type stop)")
	f.StringVar(&kind, "type", "", "limit, market or stop (default: limit with --price, else market)")
	f.StringVar(&tif, "tif", "", "time in force: gtc, ioc, fok, gtd or day")
	f.StringVar(&clientID, "client-order-id", "", "your id for the order (default: a new random one); a retry with the same id is answered, not placed twice")
	f.BoolVar(&postOnly, "post-only", false, "reject instead of trading on arrival")
	f.BoolVar(&reduceOnly, "reduce-only", false, "only reduce the position")
	return cmd
}

func orderTable(t *tabwriter.Writer, o *matchingv1.Order) {
	row(t, "ORDER", "CLIENT ID", "SYMBOL", "SIDE", "TYPE", "PRICE", "QTY", "FILLED", "REMAINING", "STATUS")
	status := enumName(o.GetStatus(), "ORDER_STATUS_")
	if o.GetRejectReason() != 0 {
		status += ": " + enumName(o.GetRejectReason(), "REJECT_REASON_")
	}
	row(t, o.GetOrderId(), o.GetClientOrderId(), o.GetSymbol(), enumName(o.GetSide(), "SIDE_"), enumName(o.GetType(), "ORDER_TYPE_"),
		o.GetPrice(), o.GetQuantity(), o.GetFilledQuantity(), o.GetRemainingQuantity(), status)
}

func newAccountCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "account [ACCOUNT]",
		Short:   "Balances, positions and PnL of an account (default $BOURSE_ACCOUNT)",
		Example: "  bourse account alice\n  bourse account alice -o yaml",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := os.Getenv("BOURSE_ACCOUNT")
			if len(args) == 1 {
				id = args[0]
			}
			if id == "" {
				return usageError("name the ACCOUNT (or set BOURSE_ACCOUNT)")
			}
			ctx, cancel := g.callCtx(cmd)
			defer cancel()
			resp, err := call(g, "risk", func(cc *grpc.ClientConn) (*riskv1.GetAccountResponse, error) {
				return riskv1.NewRiskServiceClient(cc).GetAccount(ctx, &riskv1.GetAccountRequest{AccountId: id})
			})
			if err != nil {
				return err
			}
			a := resp.GetAccount()
			return g.print(resp, func(t *tabwriter.Writer) {
				row(t, "ACCOUNT", a.GetAccountId(), "trading "+enumName(a.GetTradingState(), "TRADING_STATE_"))
				fmt.Fprintln(t)
				row(t, "ASSET", "TOTAL", "RESERVED", "AVAILABLE")
				for _, b := range a.GetBalances() {
					row(t, b.GetAssetId(), b.GetTotal(), b.GetReserved(), b.GetAvailable())
				}
				if len(a.GetPositions()) > 0 {
					fmt.Fprintln(t)
					row(t, "SYMBOL", "POSITION", "AVG PRICE", "REALISED", "UNREALISED", "FEES")
					for _, p := range a.GetPositions() {
						row(t, p.GetSymbol(), p.GetQuantity(), p.GetAveragePrice(), p.GetRealisedPnl(), p.GetUnrealisedPnl(), p.GetFeesPaid())
					}
				}
			})
		},
	}
}

func newClientOrderID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "cli-" + hex.EncodeToString(b[:])
}
