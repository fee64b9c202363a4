package testenv

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Terminal is a tmux session on its own server socket: a real terminal a test can type into and read
// the screen of, as a person would.
type Terminal struct {
	socket, session string
}

// StartTerminal runs command (a shell command line) in a new detached tmux session of the given size,
// installing tmux from Debian packages when it is missing; the session ends with the test.
func StartTerminal(t testing.TB, width, height int, command string) *Terminal {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		aptInstall(t, "tmux")
	}
	term := &Terminal{socket: fmt.Sprintf("bourse-test-%d", time.Now().UnixNano()), session: "t"}
	term.tmux(t, "new-session", "-d", "-s", term.session, "-x", fmt.Sprint(width), "-y", fmt.Sprint(height), command)
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", term.socket, "kill-server").Run() })
	return term
}

func (term *Terminal) tmux(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", term.socket}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// Screen is what the terminal shows now, one string per line.
func (term *Terminal) Screen(t testing.TB) string {
	t.Helper()
	return term.tmux(t, "capture-pane", "-p", "-t", term.session)
}

// SendKeys types keys (tmux key names: "C-c", "Enter", or literal text).
func (term *Terminal) SendKeys(t testing.TB, keys ...string) {
	t.Helper()
	term.tmux(t, append([]string{"send-keys", "-t", term.session}, keys...)...)
}

// Format reads a tmux format of the pane, e.g. "#{alternate_on}" or "#{cursor_flag}".
func (term *Terminal) Format(t testing.TB, format string) string {
	t.Helper()
	return strings.TrimSpace(term.tmux(t, "display-message", "-p", "-t", term.session, format))
}

// WaitScreen waits until the screen contains every one of want and returns it.
func (term *Terminal) WaitScreen(t testing.TB, timeout time.Duration, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		screen := term.Screen(t)
		missing := ""
		for _, w := range want {
			if !strings.Contains(screen, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return screen
		}
		if time.Now().After(deadline) {
			t.Fatalf("the terminal did not show %q within %v; it shows:\n%s", missing, timeout, screen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
