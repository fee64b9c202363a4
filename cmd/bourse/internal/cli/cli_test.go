package cli

import (
	"errors"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	matchingv1 "github.com/bourse-dev/bourse/pkg/gen/bourse/matching/v1"
)

func TestLiveBookAppliesSnapshotThenDeltas(t *testing.T) {
	b := newLiveBook(2)
	b.apply(&matchingv1.StreamMarketDataResponse{Update: &matchingv1.StreamMarketDataResponse_Snapshot{Snapshot: &matchingv1.GetBookResponse{
		Bids: []*matchingv1.PriceLevel{{Price: "99", Quantity: "1"}, {Price: "98", Quantity: "2"}},
		Asks: []*matchingv1.PriceLevel{{Price: "101", Quantity: "1"}}, LastPrice: "100"}}})
	b.apply(&matchingv1.StreamMarketDataResponse{Update: &matchingv1.StreamMarketDataResponse_Delta{Delta: &matchingv1.BookDelta{
		Levels: []*matchingv1.LevelChange{
			{Side: matchingv1.Side_SIDE_BUY, Price: "99", Quantity: "0"},      // removed
			{Side: matchingv1.Side_SIDE_BUY, Price: "99.5", Quantity: "3"},    // new best bid
			{Side: matchingv1.Side_SIDE_BUY, Price: "97", Quantity: "1"},      // beyond depth 2
			{Side: matchingv1.Side_SIDE_SELL, Price: "100.5", Quantity: "4"}}, // new best ask
		Trades: []*matchingv1.Trade{{Price: "99"}}}}})
	got := func(side matchingv1.Side) string {
		var s []string
		for _, l := range b.levels(side) {
			s = append(s, l.GetPrice()+"x"+l.GetQuantity())
		}
		return strings.Join(s, " ")
	}
	if g := got(matchingv1.Side_SIDE_BUY); g != "99.5x3 98x2" {
		t.Errorf("bids = %s", g)
	}
	if g := got(matchingv1.Side_SIDE_SELL); g != "100.5x4 101x1" {
		t.Errorf("asks = %s", g)
	}
	if b.last != "99" {
		t.Errorf("last = %s", b.last)
	}
}

func TestTensorFromJSON(t *testing.T) {
	tensor, err := tensorFromJSON("X", "FP32", "[[1,2,3],[4,5,6]]")
	if err != nil {
		t.Fatal(err)
	}
	if s := tensor.GetShape(); len(s) != 2 || s[0] != 2 || s[1] != 3 || len(tensor.GetContents().GetFp32Contents()) != 6 {
		t.Errorf("tensor = %v", tensor)
	}
	for _, bad := range []string{"[[1,2],[3]]", "[[1],2]", "[1,[2]]", `["a"]`, "nope", "[[1]"} {
		if _, err := tensorFromJSON("X", "FP32", bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	if _, err := tensorFromJSON("X", "BYTES", "[1]"); err == nil {
		t.Error("BYTES: no error")
	}
}

func TestExplainMapsCodesToExitCodes(t *testing.T) {
	for code, want := range map[codes.Code]int{
		codes.InvalidArgument: ExitUsage, codes.Unauthenticated: ExitAuth, codes.PermissionDenied: ExitAuth,
		codes.NotFound: ExitNotFound, codes.Unavailable: ExitUnreachable, codes.DeadlineExceeded: ExitUnreachable,
		codes.FailedPrecondition: ExitFailed, codes.Internal: ExitFailed,
	} {
		e := explain(status.Error(code, "x"), "matching", "127.0.0.1:7003")
		if e.code != want {
			t.Errorf("%v: exit %d, want %d (%s)", code, e.code, want, e.msg)
		}
	}
	if e := explain(errors.New("plain"), "risk", "a"); e.code != ExitFailed {
		t.Errorf("plain error: %d", e.code)
	}
}

// Every command a person runs shows examples in its --help.
func TestEveryCommandHasExamples(t *testing.T) {
	root := newRoot(&globals{})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if !c.IsAvailableCommand() || c.HasSubCommands() || c.Name() == "help" || c.Parent() != nil && c.Parent().Name() == "completion" {
			return
		}
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%s has no examples in its --help", c.CommandPath())
		}
	}
	walk(root)
}

func TestCompletionScripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh"} {
		var out, errOut strings.Builder
		if code := Main([]string{"completion", shell}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "bourse") {
			t.Errorf("completion %s: exit %d, %d bytes, %s", shell, code, out.Len(), errOut.String())
		}
	}
}

// An integer input takes integers in its type's range: 1.5 or 3e9 for an INT32 is refused, not
// truncated or wrapped into another number.
func TestTensorFromJSONIntegerInputs(t *testing.T) {
	for datatype, bad := range map[string][]string{
		"INT32": {"[1.5]", "[3e9]", "[-2147483649]"}, "INT16": {"[40000]", "[0.1]"}, "INT8": {"[128]", "[-129]"},
		"INT64": {"[0.5]", "[1e19]"},
	} {
		for _, body := range bad {
			if tensor, err := tensorFromJSON("X", datatype, body); err == nil {
				t.Errorf("%s %s: accepted as %v", datatype, body, tensor.GetContents())
			}
		}
	}
	for datatype, good := range map[string]string{"INT32": "[-2147483648, 2147483647, 3]", "INT8": "[-128, 127]", "INT64": "[1e15, -7]"} {
		if _, err := tensorFromJSON("X", datatype, good); err != nil {
			t.Errorf("%s %s: %v", datatype, good, err)
		}
	}
}
