package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shopspring/decimal"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
)

func newBookCmd(g *globals) *cobra.Command {
	var depth uint32
	var watch bool
	cmd := &cobra.Command{
		Use:   "book SYMBOL [--watch]",
		Short: "The order book's price levels; --watch redraws it live until Ctrl-C",
		Example: `  bourse book BTC-USD
  bourse book BTC-USD --depth 20 --watch
  bourse book BTC-USD --watch -o json     # one JSON object per update, for scripts`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !watch {
				ctx, cancel := g.callCtx(cmd)
				defer cancel()
				resp, err := call(g, "matching", func(cc *grpc.ClientConn) (*matchingv1.GetBookResponse, error) {
					return matchingv1.NewMatchingServiceClient(cc).GetBook(ctx, &matchingv1.GetBookRequest{Symbol: args[0], Depth: depth})
				})
				if err != nil {
					return err
				}
				return g.print(resp, func(t *tabwriter.Writer) { bookTable(t, resp.GetBids(), resp.GetAsks(), resp.GetLastPrice()) })
			}
			book := newLiveBook(depth)
			screen := newScreen(g.out)
			defer screen.close()
			return g.streamMarketData(cmd, args[0], depth, func(m *matchingv1.StreamMarketDataResponse) error {
				book.apply(m)
				if g.output != "table" {
					return g.print(m, nil)
				}
				var b strings.Builder
				fmt.Fprintf(&b, "%s  seq %d  %s   (Ctrl-C to stop)\n\n", args[0], m.GetSequence(), time.Now().Format(time.TimeOnly))
				t := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
				bookTable(t, book.levels(matchingv1.Side_SIDE_BUY), book.levels(matchingv1.Side_SIDE_SELL), book.last)
				t.Flush()
				return screen.draw(b.String())
			})
		},
	}
	cmd.Flags().Uint32Var(&depth, "depth", 10, "price levels per side")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "stream updates and redraw in place")
	return cmd
}

func newTradesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "trades SYMBOL --watch",
		Short:   "The tape: every trade of a symbol as it happens, until Ctrl-C",
		Example: "  bourse trades BTC-USD --watch\n  bourse trades BTC-USD --watch -o json | jq .price",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if w, _ := cmd.Flags().GetBool("watch"); !w {
				return usageError("trades only streams: add --watch (the book's last price is in `bourse book %s`)", args[0])
			}
			header := false
			return g.streamMarketData(cmd, args[0], 1, func(m *matchingv1.StreamMarketDataResponse) error {
				for _, tr := range m.GetDelta().GetTrades() {
					if g.output != "table" {
						if err := g.print(tr, nil); err != nil {
							return err
						}
						continue
					}
					if !header {
						fmt.Fprintf(g.out, "%-15s  %-12s  %14s  %14s\n", "TIME", "AGGRESSOR", "PRICE", "QUANTITY")
						header = true
					}
					fmt.Fprintf(g.out, "%-15s  %-12s  %14s  %14s\n", tr.GetTime().AsTime().Local().Format("15:04:05.000000"),
						enumName(tr.GetAggressorSide(), "SIDE_"), tr.GetPrice(), tr.GetQuantity())
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolP("watch", "w", false, "stream trades")
	return cmd
}

// streamMarketData calls fn for every message of the symbol's market data until the command's
// context ends (Ctrl-C), which is a clean exit.
func (g *globals) streamMarketData(cmd *cobra.Command, symbol string, depth uint32, fn func(*matchingv1.StreamMarketDataResponse) error) error {
	ctx := cmd.Context()
	stream, err := call(g, "matching", func(cc *grpc.ClientConn) (grpc.ServerStreamingClient[matchingv1.StreamMarketDataResponse], error) {
		return matchingv1.NewMatchingServiceClient(cc).StreamMarketData(ctx, &matchingv1.StreamMarketDataRequest{Symbols: []string{symbol}, Depth: depth})
	})
	if err != nil {
		return err
	}
	for {
		m, err := stream.Recv()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled {
				return nil
			}
			return explain(err, "matching", g.conns.where("matching"))
		}
		if err := fn(m); err != nil {
			return err
		}
	}
}

// liveBook applies a snapshot and then L2 changes (quantity 0 removes a level).
type liveBook struct {
	depth uint32
	side  map[matchingv1.Side]map[string]*matchingv1.PriceLevel
	last  string
}

func newLiveBook(depth uint32) *liveBook {
	return &liveBook{depth: depth, side: map[matchingv1.Side]map[string]*matchingv1.PriceLevel{}}
}

func (b *liveBook) apply(m *matchingv1.StreamMarketDataResponse) {
	if s := m.GetSnapshot(); s != nil {
		b.side[matchingv1.Side_SIDE_BUY] = map[string]*matchingv1.PriceLevel{}
		b.side[matchingv1.Side_SIDE_SELL] = map[string]*matchingv1.PriceLevel{}
		for _, l := range s.GetBids() {
			b.side[matchingv1.Side_SIDE_BUY][l.GetPrice()] = l
		}
		for _, l := range s.GetAsks() {
			b.side[matchingv1.Side_SIDE_SELL][l.GetPrice()] = l
		}
		b.last = s.GetLastPrice()
		return
	}
	d := m.GetDelta()
	for _, c := range d.GetLevels() {
		levels := b.side[c.GetSide()]
		if levels == nil {
			levels = map[string]*matchingv1.PriceLevel{}
			b.side[c.GetSide()] = levels
		}
		if q, err := decimal.NewFromString(c.GetQuantity()); err == nil && q.IsZero() {
			delete(levels, c.GetPrice())
			continue
		}
		levels[c.GetPrice()] = &matchingv1.PriceLevel{Price: c.GetPrice(), Quantity: c.GetQuantity()}
	}
	if tr := d.GetTrades(); len(tr) > 0 {
		b.last = tr[len(tr)-1].GetPrice()
	}
}

// levels returns a side best first, at most depth of them.
func (b *liveBook) levels(side matchingv1.Side) []*matchingv1.PriceLevel {
	out := make([]*matchingv1.PriceLevel, 0, len(b.side[side]))
	for _, l := range b.side[side] {
		out = append(out, l)
	}
	slices.SortFunc(out, func(x, y *matchingv1.PriceLevel) int {
		px, _ := decimal.NewFromString(x.GetPrice())
		py, _ := decimal.NewFromString(y.GetPrice())
		if side == matchingv1.Side_SIDE_BUY {
			return py.Cmp(px)
		}
		return px.Cmp(py)
	})
	if b.depth > 0 && len(out) > int(b.depth) {
		out = out[:b.depth]
	}
	return out
}

// bookTable shows asks above bids, best prices meeting in the middle, as a depth ladder does.
func bookTable(t *tabwriter.Writer, bids, asks []*matchingv1.PriceLevel, last string) {
	row(t, "", "PRICE", "QUANTITY", "ORDERS")
	for i := len(asks) - 1; i >= 0; i-- {
		row(t, "ask", asks[i].GetPrice(), asks[i].GetQuantity(), orders(asks[i]))
	}
	row(t, "last", last, "", "")
	for _, l := range bids {
		row(t, "bid", l.GetPrice(), l.GetQuantity(), orders(l))
	}
}

func orders(l *matchingv1.PriceLevel) string {
	if l.GetOrders() == 0 {
		return ""
	}
	return fmt.Sprint(l.GetOrders())
}

// screen redraws a frame in place on a terminal (the alternate screen, cursor hidden, both
// restored on close, so Ctrl-C leaves the terminal as it was) and prints frames one after the
// other elsewhere.
type screen struct {
	w   *bufio.Writer
	tty bool
	on  bool
}

func newScreen(out io.Writer) *screen {
	s := &screen{w: bufio.NewWriter(out)}
	if f, ok := out.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			s.tty = true
		}
	}
	return s
}

func (s *screen) draw(frame string) error {
	if s.tty {
		if !s.on {
			s.w.WriteString("\x1b[?1049h\x1b[?25l")
			s.on = true
		}
		s.w.WriteString("\x1b[H\x1b[2J")
		s.w.WriteString(strings.ReplaceAll(frame, "\n", "\r\n"))
	} else {
		s.w.WriteString(frame + "\n")
	}
	return s.w.Flush()
}

func (s *screen) close() {
	if s.on {
		s.w.WriteString("\x1b[?25h\x1b[?1049l")
		s.on = false
	}
	s.w.Flush()
}
