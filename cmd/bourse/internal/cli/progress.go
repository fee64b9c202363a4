package cli

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"sync"
)

// progressBar draws "label [█████     ]  45% detail" on one terminal line, redrawn in place; off a
// terminal it stays silent until done, which prints the final state once, so logs get one line.
type progressBar struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	width int
	last  string
}

func newProgressBar(w io.Writer) *progressBar {
	p := &progressBar{w: w, width: 30}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progressBar) line(label string, fraction float64, detail string) string {
	if math.IsNaN(fraction) { // 0/0: nothing to do is nothing done
		fraction = 0
	}
	fraction = min(max(fraction, 0), 1)
	filled := int(fraction * float64(p.width))
	return fmt.Sprintf("%s [%s%s] %3.0f%% %s", label, strings.Repeat("█", filled), strings.Repeat("░", p.width-filled), fraction*100, detail)
}

// update redraws the bar.
func (p *progressBar) update(label string, fraction float64, detail string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last = p.line(label, fraction, detail)
	if p.tty {
		fmt.Fprintf(p.w, "\r\x1b[2K%s", p.last)
	}
}

// done draws the final state and ends the line.
func (p *progressBar) done(label string, fraction float64, detail string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last = p.line(label, fraction, detail)
	if p.tty {
		fmt.Fprintf(p.w, "\r\x1b[2K%s\n", p.last)
		return
	}
	fmt.Fprintln(p.w, p.last)
}
