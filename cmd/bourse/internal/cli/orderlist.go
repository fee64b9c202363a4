package cli

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
)

func newOrderListCmd(g *globals) *cobra.Command {
	var (
		account, symbol, token string
		pageSize               uint32
		all                    bool
	)
	cmd := &cobra.Command{
		Use:   "list [--symbol S] [--account A] [--all]",
		Short: "An account's open orders (resting or waiting for a trigger), by symbol and order id",
		Example: "  bourse order list --account alice\n" +
			"  bourse order list --symbol BTC-USD --account alice -o json\n" +
			"  bourse order list --all --account alice -o yaml      # every page, as one list",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if account == "" {
				return usageError("--account is required (or set BOURSE_ACCOUNT)")
			}
			if pageSize > 1000 {
				return usageError("--page-size %d: at most 1000", pageSize)
			}
			req := &matchingv1.ListOrdersRequest{AccountId: account, Symbol: symbol, PageSize: pageSize, PageToken: token}
			page := func() (*matchingv1.ListOrdersResponse, error) {
				ctx, cancel := g.callCtx(cmd)
				defer cancel()
				return call(g, "matching", func(cc *grpc.ClientConn) (*matchingv1.ListOrdersResponse, error) {
					return matchingv1.NewMatchingServiceClient(cc).ListOrders(ctx, req)
				})
			}
			resp, err := page()
			if err != nil {
				return err
			}
			// --all gathers the pages into one answer, printed like a single last page.
			for all && resp.GetNextPageToken() != "" {
				if resp.GetNextPageToken() == req.GetPageToken() {
					return fmt.Errorf("matching answered the same page token twice; stopping")
				}
				req.PageToken = resp.GetNextPageToken()
				next, err := page()
				if err != nil {
					return err
				}
				resp.Orders = append(resp.Orders, next.GetOrders()...)
				resp.NextPageToken = next.GetNextPageToken()
			}
			if err := g.print(resp, func(t *tabwriter.Writer) { orderListTable(t, resp.GetOrders()) }); err != nil {
				return err
			}
			if tok := resp.GetNextPageToken(); tok != "" && g.output != "json" && g.output != "yaml" {
				fmt.Fprintf(g.errOut, "more orders: repeat with --page-token %s, or use --all\n", tok)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&account, "account", os.Getenv("BOURSE_ACCOUNT"), "trading account (default $BOURSE_ACCOUNT)")
	f.StringVar(&symbol, "symbol", "", "only this symbol's orders")
	f.BoolVar(&all, "all", false, "follow every page to the end")
	f.Uint32Var(&pageSize, "page-size", 0, "orders per page (default 100, at most 1000)")
	f.StringVar(&token, "page-token", "", "continue after a previous page (its next_page_token)")
	return cmd
}

func orderListTable(t *tabwriter.Writer, orders []*matchingv1.Order) {
	row(t, "SYMBOL", "ORDER", "SIDE", "TYPE", "PRICE", "QTY", "REMAINING", "FILLED", "STATUS", "CLIENT ID")
	for _, o := range orders {
		row(t, o.GetSymbol(), o.GetOrderId(), enumName(o.GetSide(), "SIDE_"), enumName(o.GetType(), "ORDER_TYPE_"), o.GetPrice(),
			o.GetQuantity(), o.GetRemainingQuantity(), o.GetFilledQuantity(), enumName(o.GetStatus(), "ORDER_STATUS_"), o.GetClientOrderId())
	}
}
