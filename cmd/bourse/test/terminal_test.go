package cli_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bourse-dev/bourse/pkg/testenv"
)

// `bourse book --watch` in a real terminal: it draws the book, redraws it in place when an order
// arrives, and Ctrl-C ends it with the terminal as it was (main screen, cursor shown, exit 0).
func TestBookWatchInATerminal(t *testing.T) {
	p := startPlatform(t)
	bin := testenv.Build(t, "github.com/bourse-dev/bourse/cmd/bourse")
	term := testenv.StartTerminal(t, 120, 30, fmt.Sprintf("printf 'before\\n'; %s --consul %s --api-key %s book BTC-USD --watch; echo EXIT=$?; sleep 60",
		bin, p.consul, aliceKey))
	term.WaitScreen(t, 20*time.Second, "BTC-USD  seq", "PRICE", "last", "(Ctrl-C to stop)")
	if on := term.Format(t, "#{alternate_on}"); on != "1" {
		t.Errorf("the watch does not draw on the alternate screen (alternate_on=%s)", on)
	}
	if code, out, errOut := p.run(bobKey, "order", "sell", "BTC-USD", "0.125", "--price", "52000", "--account", "bob"); code != 0 {
		t.Fatalf("sell: %d %s%s", code, out, errOut)
	}
	screen := term.WaitScreen(t, 20*time.Second, "52000", "0.125")
	if n := strings.Count(screen, "PRICE"); n != 1 {
		t.Errorf("the book is drawn %d times on one screen, want once (redrawn in place):\n%s", n, screen)
	}
	term.SendKeys(t, "C-c")
	screen = term.WaitScreen(t, 10*time.Second, "EXIT=0")
	if strings.Contains(screen, "PRICE") || !strings.Contains(screen, "before") {
		t.Errorf("after Ctrl-C the terminal still shows the watch, or lost what was there before:\n%s", screen)
	}
	if on, cursor := term.Format(t, "#{alternate_on}"), term.Format(t, "#{cursor_flag}"); on != "0" || cursor != "1" {
		t.Errorf("after Ctrl-C: alternate_on=%s cursor_flag=%s, want 0 and 1", on, cursor)
	}
}
